export { ConsentIndex } from './consent-index.ts'
export type { ConsentEvent, Grant, Gate } from './consent-index.ts'
export { PURPOSES, LEGAL_BASES, CATEGORIES, COLLECTION, METRIC_CATEGORY, needsConsent } from './policy.ts'
export type { Purpose, LegalBasis, Category, Metric, CollectionRule } from './policy.ts'
