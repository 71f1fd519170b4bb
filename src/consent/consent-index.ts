/**
 * The in-memory index the hot path reads: (tenant, patient, purpose, category)
 * → the grant in force. It is materialised from the append-only consent log
 * (consent_events); apply() takes each event in log order, so a change is
 * seen by the very next lookup.
 */
import { CATEGORIES, POLICY, type Category, type LegalBasis, type Policy, type Purpose } from './policy.ts'

export interface ConsentEvent {
  tenant: string
  patient: string
  purpose: Purpose
  category: Category
  action: 'grant' | 'withdraw'
  version: number
  recordedBy: string
  /** app, professional, paper, or guardian: a grant by a legal guardian, the one kind that covers a minor. */
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
  /** Given by a legal guardian (the only grant that covers a patient under the minimum age). */
  readonly guardian?: boolean
}

/** Answers, for one message, under which grant each category may be stored (null: not at all). */
export type Gate = (category: Category) => Grant | null

/** The consent cut: whether a grant covers a value measured at atMs (not before the patient consented). */
export function covers (grant: Grant | null, atMs: number): grant is Grant {
  return grant !== null && atMs >= grant.fromMs
}

function key (tenant: string, patient: string, purpose: Purpose, category: Category): string {
  return `${tenant}\0${patient}\0${purpose}\0${category}`
}

export class ConsentIndex {
  private readonly grants = new Map<string, Grant>()
  private readonly versions = new Map<string, number>()
  /** tenant\0patient → the time the patient reaches the tenant's minimum age. */
  private readonly minorUntil = new Map<string, number>()
  private readonly ownBasis: Partial<Record<Category, Grant>> = {}
  private readonly deny: Gate

  constructor (readonly policy: Policy = POLICY) {
    for (const category of CATEGORIES) {
      const rule = policy.collection[category]
      if (rule.basis !== 'consent') this.ownBasis[category] = Object.freeze({ purpose: rule.purpose, basis: rule.basis, version: 0, fromMs: 0 })
    }
    const own = this.ownBasis
    this.deny = (category) => own[category] ?? null
  }

  /** Applies one event from the log. Events of a patient must arrive in version order. */
  apply (e: ConsentEvent): void {
    const k = key(e.tenant, e.patient, e.purpose, e.category)
    if (e.action === 'grant') {
      // a repeated grant keeps the one in force (and its earlier start); a guardian's grant replaces
      // one that was not a guardian's, which never covered a minor, on its own terms
      const had = this.grants.get(k)
      if (had === undefined || (e.source === 'guardian' && had.guardian !== true)) {
        this.grants.set(k, Object.freeze({ purpose: e.purpose, basis: 'consent', version: e.version, fromMs: e.validFromMs, guardian: e.source === 'guardian' }))
      }
    } else {
      this.grants.delete(k)
    }
    const pk = `${e.tenant}\0${e.patient}`
    if ((this.versions.get(pk) ?? 0) < e.version) this.versions.set(pk, e.version)
  }

  /** Records when a patient reaches the tenant's minimum age (null: an adult, or age unknown to us). */
  setMinorUntil (tenant: string, patient: string, untilMs: number | null): void {
    const pk = `${tenant}\0${patient}`
    if (untilMs === null) this.minorUntil.delete(pk)
    else this.minorUntil.set(pk, untilMs)
  }

  /** Forgets everything about a patient (after erasure). */
  forget (tenant: string, patient: string): void {
    const prefix = `${tenant}\0${patient}\0`
    for (const k of this.grants.keys()) if (k.startsWith(prefix)) this.grants.delete(k)
    this.minorUntil.delete(`${tenant}\0${patient}`)
  }

  /** The next version number for a patient's consent log. */
  nextVersion (tenant: string, patient: string): number {
    return (this.versions.get(`${tenant}\0${patient}`) ?? 0) + 1
  }

  /** The grant in force for a use, taking the age rule into account. */
  lookup (tenant: string, patient: string, purpose: Purpose, category: Category, nowMs = Date.now()): Grant | null {
    const g = this.grants.get(key(tenant, patient, purpose, category)) ?? null
    return g !== null && g.guardian !== true && this.isMinor(tenant, patient, nowMs) ? null : g
  }

  private isMinor (tenant: string, patient: string, nowMs: number): boolean {
    const until = this.minorUntil.get(`${tenant}\0${patient}`)
    return until !== undefined && nowMs < until
  }

  /**
   * The gate for one message of one patient. Categories with a basis of their
   * own (contract, legitimate interest, legal obligation) pass; consent-based
   * ones need a grant for their collection purpose, and for a patient below
   * the minimum age a guardian's grant. Data of no known patient cannot be
   * consented to, so only the own-basis categories pass.
   */
  gate (tenant: string, patient: string | null, nowMs = Date.now()): Gate {
    if (patient === null) return this.deny
    const own = this.ownBasis
    const collection = this.policy.collection
    const minor = this.isMinor(tenant, patient, nowMs)
    return (category) => {
      const o = own[category]
      if (o !== undefined) return o
      const g = this.grants.get(key(tenant, patient, collection[category].purpose, category)) ?? null
      return g !== null && minor && g.guardian !== true ? null : g
    }
  }
}
