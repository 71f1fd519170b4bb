/**
 * The processing policy as data: which category of data is collected for
 * which purpose on which legal basis (privacy-requirements.md, "Data and
 * devices"). The filter, the stored provenance columns and (later) the
 * register of processing and retention all read this one table.
 */
export const PURPOSES = ['care', 'research', 'service_improvement', 'service_operation'] as const
export type Purpose = (typeof PURPOSES)[number]

export const LEGAL_BASES = ['consent', 'contract', 'legitimate_interest', 'legal_obligation'] as const
export type LegalBasis = (typeof LEGAL_BASES)[number]

export const CATEGORIES = [
  'vitals', 'sleep', 'activity', 'location', 'spot_measurements', 'alarm_events', 'device_diagnostics', 'security_logs',
] as const
export type Category = (typeof CATEGORIES)[number]

export interface CollectionRule { purpose: Purpose; basis: LegalBasis; source: string }

/** Why each category is collected at ingest. */
export const COLLECTION: Readonly<Record<Category, CollectionRule>> = {
  vitals: { purpose: 'care', basis: 'consent', source: 'Corsano terms Annex 1; FocusCura statement Annex 1' },
  sleep: { purpose: 'care', basis: 'consent', source: 'Corsano terms Annex 1' },
  activity: { purpose: 'care', basis: 'consent', source: 'Corsano terms Annex 1' },
  location: { purpose: 'care', basis: 'consent', source: 'Corsano terms Annex 1; FocusCura statement Annex 1' },
  spot_measurements: { purpose: 'care', basis: 'consent', source: 'FocusCura policy art. 7F' },
  alarm_events: { purpose: 'care', basis: 'contract', source: 'FocusCura statement §3, Annex 1' },
  device_diagnostics: { purpose: 'service_operation', basis: 'legitimate_interest', source: 'Corsano terms Annex 1' },
  security_logs: { purpose: 'service_operation', basis: 'legitimate_interest', source: 'FocusCura statement Annex 1' },
}

/** Metric names as stored in vital_samples.metric, and the category each belongs to. */
export const METRIC_CATEGORY = {
  heart_rate: 'vitals',
  hrv_rmssd: 'vitals',
  spo2: 'vitals',
  respiration_rate: 'vitals',
  skin_temperature: 'vitals',
  steps: 'activity',
  active_energy: 'activity',
  sleep_stage: 'sleep',
  battery: 'device_diagnostics',
} as const satisfies Record<string, Category>
export type Metric = keyof typeof METRIC_CATEGORY

export function needsConsent (category: Category): boolean {
  return COLLECTION[category].basis === 'consent'
}
