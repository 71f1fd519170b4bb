export { createAdminApi } from './admin.ts'
export type { AdminApiDeps } from './admin.ts'
