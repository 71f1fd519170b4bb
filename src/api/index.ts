export { createAdminApi } from './admin.ts'
export type { AdminApiDeps } from './admin.ts'
export { createAdminClient, adminClientFor, AdminApiError } from './admin-client.ts'
export type { AdminClient } from './admin-client.ts'
