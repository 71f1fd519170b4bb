export { Rights, RightsError, RECTIFIABLE_TARGETS } from './rights.ts'
export type { Actor, AccessReport, ErasureReceipt, RightsOptions } from './rights.ts'
