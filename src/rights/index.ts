export { Rights, RightsError, RECTIFIABLE_TARGETS } from './rights.ts'
export type { Actor, AccessReport, ErasureReceipt, RightsOptions } from './rights.ts'
export { exportPatient, ExportError } from './export.ts'
export type { ExportFormat, ExportRequest, ExportResult } from './export.ts'
