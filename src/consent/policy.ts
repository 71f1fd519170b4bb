/**
 * The processing policy as data: which category of data is processed for
 * which purpose on which legal basis, for how long, and who receives it
 * (privacy-requirements.md). The ingest filter, the provenance stored with
 * every row, the register of processing and the retention TTLs are all
 * generated from one Policy value, so they cannot disagree. A test can hand
 * in another policy and see all four change.
 */
import { BRACELET_CATEGORY, type Metric } from '../catalogue/index.ts'

export const PURPOSES = ['care', 'research', 'service_improvement', 'service_operation'] as const
export type Purpose = (typeof PURPOSES)[number]

export const LEGAL_BASES = ['consent', 'contract', 'legitimate_interest', 'legal_obligation'] as const
export type LegalBasis = (typeof LEGAL_BASES)[number]

export const CATEGORIES = [
  'vitals', 'sleep', 'activity', 'location', 'spot_measurements', 'alarm_events', 'device_diagnostics', 'security_logs', 'access_logs',
] as const
export type Category = (typeof CATEGORIES)[number]

/** Why a category is collected at ingest: the purpose and basis stored with each row. */
export interface CollectionRule { purpose: Purpose; basis: LegalBasis; source: string }

/** How long a category is kept, in days; a tenant may choose within [minDays, maxDays]. */
export interface RetentionRule { defaultDays: number; minDays: number; maxDays: number; source: string }

export interface Policy {
  /** Bumped whenever the policy text changes; printed in the register. */
  version: string
  /** The purpose and legal basis each category is collected under. */
  collection: Readonly<Record<Category, CollectionRule>>
  /** Further purposes a category may be used for, with their own basis (e.g. research needs its own consent). */
  furtherUse: ReadonlyArray<{ purpose: Purpose; category: Category; basis: LegalBasis; source: string }>
  retention: Readonly<Record<Category, RetentionRule>>
  /** Who receives the data of a purpose. */
  recipients: Readonly<Record<Purpose, readonly string[]>>
  processor: string
}

const DAY = 1
const YEAR = 365 * DAY + 0.25 * DAY

function years (n: number): number { return Math.round(n * YEAR) }

const MEDICAL: RetentionRule = {
  defaultDays: years(20), minDays: years(2), maxDays: years(20),
  source: 'WGBO art. 7:454 (20 years); FocusCura statement Annex 1 (2 years when not part of the medical file)',
}

export const POLICY: Policy = {
  version: '2026-11-23',
  collection: {
    vitals: { purpose: 'care', basis: 'consent', source: 'Corsano terms Annex 1; FocusCura statement Annex 1' },
    sleep: { purpose: 'care', basis: 'consent', source: 'Corsano terms Annex 1' },
    activity: { purpose: 'care', basis: 'consent', source: 'Corsano terms Annex 1' },
    location: { purpose: 'care', basis: 'consent', source: 'Corsano terms Annex 1; FocusCura statement Annex 1' },
    spot_measurements: { purpose: 'care', basis: 'consent', source: 'FocusCura policy art. 7F' },
    alarm_events: { purpose: 'care', basis: 'contract', source: 'FocusCura statement §3, Annex 1' },
    device_diagnostics: { purpose: 'service_operation', basis: 'legitimate_interest', source: 'Corsano terms Annex 1' },
    security_logs: { purpose: 'service_operation', basis: 'legitimate_interest', source: 'FocusCura statement Annex 1' },
    access_logs: { purpose: 'service_operation', basis: 'legal_obligation', source: 'NEN 7513; Stcrt 2019-38007' },
  },
  furtherUse: [
    { purpose: 'research', category: 'vitals', basis: 'consent', source: 'FocusCura policy art. 9.4' },
    { purpose: 'research', category: 'sleep', basis: 'consent', source: 'FocusCura policy art. 9.4' },
    { purpose: 'research', category: 'activity', basis: 'consent', source: 'FocusCura policy art. 9.4' },
    { purpose: 'service_improvement', category: 'device_diagnostics', basis: 'legitimate_interest', source: 'Corsano terms Annex 1' },
  ],
  retention: {
    vitals: MEDICAL,
    sleep: MEDICAL,
    activity: MEDICAL,
    location: MEDICAL,
    spot_measurements: MEDICAL,
    alarm_events: MEDICAL,
    device_diagnostics: { defaultDays: years(2), minDays: 30, maxDays: years(7), source: 'FocusCura statement Annex 1; policy art. 12.2' },
    security_logs: { defaultDays: years(5), minDays: years(2), maxDays: years(7), source: 'FocusCura statement Annex 1; NEN 7513' },
    access_logs: { defaultDays: years(5), minDays: years(5), maxDays: years(20), source: 'NEN 7513 with Stcrt 2019-38007 (at least 5 years)' },
  },
  recipients: {
    care: ['the care professionals of the tenant linked to the patient', 'alarm responders of the tenant (alarm events)'],
    research: ['researchers of the tenant, as aggregates over at least k patients'],
    service_improvement: ['the processor\'s engineers, device diagnostics only'],
    service_operation: ['the processor\'s operators', 'the tenant\'s administrators'],
  },
  processor: 'vitalflow (processor for the tenant, the controller)',
}

/** Kept for readers of the default policy's collection rules. */
export const COLLECTION = POLICY.collection

/** Metric names as stored in vital_samples.metric, and the category each belongs to (from the catalogue). */
export const METRIC_CATEGORY = BRACELET_CATEGORY satisfies Readonly<Record<Metric, Category>>
export type { Metric }

/** The categories stored only under the patient's consent (and erased on its withdrawal when asked). */
export const CONSENT_CATEGORIES = CATEGORIES.filter((c) => POLICY.collection[c].basis === 'consent') as [Category, ...Category[]]

export function needsConsent (category: Category, policy: Policy = POLICY): boolean {
  return policy.collection[category].basis === 'consent'
}

/** The basis a category may be used on for a purpose, or null when the policy does not allow that use. */
export function basisFor (policy: Policy, purpose: Purpose, category: Category): LegalBasis | null {
  if (policy.collection[category].purpose === purpose) return policy.collection[category].basis
  return policy.furtherUse.find((u) => u.purpose === purpose && u.category === category)?.basis ?? null
}
