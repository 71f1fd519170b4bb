/**
 * The in-memory index the hot path reads: (tenant, patient, purpose, category)
 * → the grant in force. It is materialised from the append-only consent log
 * (consent_events); apply() takes each event in log order, so a change is
 * seen by the very next lookup.
 */
import { COLLECTION, needsConsent, type Category, type LegalBasis, type Purpose } from './policy.ts'

export interface ConsentEvent {
  tenant: string
  patient: string
  purpose: Purpose
  category: Category
  action: 'grant' | 'withdraw'
  version: number
  recordedBy: string
  source: string
  recordedAtMs: number
  /** When the patient gave the consent; data measured before it is not covered. */
  validFromMs: number
}

/** Why a row may be stored: its purpose, legal basis, the consent version, and the earliest sample time it covers. */
export interface Grant {
  readonly purpose: Purpose
  readonly basis: LegalBasis
  readonly version: number
  readonly fromMs: number
}

/** Answers, for one message, under which grant each category may be stored (null: not at all). */
export type Gate = (category: Category) => Grant | null

const OWN_BASIS: Partial<Record<Category, Grant>> = {}
for (const [category, rule] of Object.entries(COLLECTION) as Array<[Category, (typeof COLLECTION)[Category]]>) {
  if (rule.basis !== 'consent') OWN_BASIS[category] = Object.freeze({ purpose: rule.purpose, basis: rule.basis, version: 0, fromMs: 0 })
}

const DENY: Gate = (category) => OWN_BASIS[category] ?? null

function key (tenant: string, patient: string, purpose: Purpose, category: Category): string {
  return `${tenant}\0${patient}\0${purpose}\0${category}`
}

export class ConsentIndex {
  private readonly grants = new Map<string, Grant>()
  private readonly versions = new Map<string, number>()

  /** Applies one event from the log. Events of a patient must arrive in version order. */
  apply (e: ConsentEvent): void {
    const k = key(e.tenant, e.patient, e.purpose, e.category)
    if (e.action === 'grant') {
      if (!this.grants.has(k)) this.grants.set(k, Object.freeze({ purpose: e.purpose, basis: 'consent', version: e.version, fromMs: e.validFromMs }))
    } else {
      this.grants.delete(k)
    }
    const pk = `${e.tenant}\0${e.patient}`
    if ((this.versions.get(pk) ?? 0) < e.version) this.versions.set(pk, e.version)
  }

  /** The next version number for a patient's consent log. */
  nextVersion (tenant: string, patient: string): number {
    return (this.versions.get(`${tenant}\0${patient}`) ?? 0) + 1
  }

  lookup (tenant: string, patient: string, purpose: Purpose, category: Category): Grant | null {
    return this.grants.get(key(tenant, patient, purpose, category)) ?? null
  }

  /**
   * The gate for one message of one patient. Categories with a basis of their
   * own (contract, legitimate interest) pass; consent-based ones need a grant
   * for their collection purpose. Data of no known patient cannot be consented
   * to, so only the own-basis categories pass.
   */
  gate (tenant: string, patient: string | null): Gate {
    if (patient === null) return DENY
    return (category) => {
      if (!needsConsent(category)) return OWN_BASIS[category] ?? null
      return this.grants.get(key(tenant, patient, COLLECTION[category].purpose, category)) ?? null
    }
  }
}
