/**
 * ClickHouse-enforced isolation for dashboards that query ClickHouse directly
 * (server mode): per tenant a read-only user with a settings profile, a quota,
 * SELECT on the data tables and a row policy `tenant_id = '<tenant>'` on each.
 * DDL cannot take query parameters, so the tenant id is a literal here; it is
 * validated against the id alphabet first, which has no quote or backslash.
 */
import { createHash } from 'node:crypto'
import { isId } from '../ids.ts'

/** Tables a tenant's dashboard may read (pseudonymous telemetry and its own alarm handling). */
export const DASHBOARD_TABLES = ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status', 'alarm_acks'] as const

export interface TenantAccess { user: string; statements: string[] }

export function tenantAccessDdl (db: string, tenant: string, password: string, serviceUser = 'default'): TenantAccess {
  if (!isId(tenant)) throw new Error('tenant id must match [A-Za-z0-9_-]{1,64}')
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(db) || !/^[A-Za-z0-9_.-]+$/.test(serviceUser)) throw new Error('invalid database or service user name')
  const user = `vf_dash_${tenant}`
  const q = (name: string): string => '`' + name + '`'
  const hash = createHash('sha256').update(password).digest('hex')
  const statements = [
    `CREATE SETTINGS PROFILE IF NOT EXISTS ${q('vf_dashboard_readonly')} SETTINGS readonly = 1, max_execution_time = 30, max_result_rows = 1000000, max_memory_usage = 4000000000`,
    `CREATE USER IF NOT EXISTS ${q(user)} IDENTIFIED WITH sha256_hash BY '${hash}' DEFAULT DATABASE ${q(db)} SETTINGS PROFILE ${q('vf_dashboard_readonly')}`,
    `CREATE QUOTA IF NOT EXISTS ${q(`vf_quota_${tenant}`)} FOR INTERVAL 1 hour MAX queries = 20000, result_rows = 200000000, execution_time = 3600 TO ${q(user)}`,
    ...DASHBOARD_TABLES.map((t) => `GRANT SELECT ON ${q(db)}.${q(t)} TO ${q(user)}`),
    ...DASHBOARD_TABLES.map((t) => `CREATE ROW POLICY IF NOT EXISTS ${q(`vf_tenant_${tenant}`)} ON ${q(db)}.${q(t)} FOR SELECT USING tenant_id = '${tenant}' TO ${q(user)}`),
    // once a table has row policies, the ingest service's own user needs one that lets it see every row
    ...DASHBOARD_TABLES.map((t) => `CREATE ROW POLICY IF NOT EXISTS ${q('vf_service_all')} ON ${q(db)}.${q(t)} FOR SELECT USING 1 TO ${q(serviceUser)}`),
  ]
  return { user, statements }
}
