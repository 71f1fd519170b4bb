/**
 * The platform administrator's reads of one tenant's store, and the dashboard user's DDL: the SQL
 * behind /admin, kept out of the route layer. Every query binds the tenant as a parameter.
 */
import type { Storage } from './storage.ts'
import type { TableName } from './rows.ts'
import { tenantAccessDdl } from './tenant-access.ts'

/** A burst of refused input from one source, as the security log holds it. */
export interface SecurityEvent { source: string; reasons: Record<string, number>; refusals: number; firstMs: number; lastMs: number }

/** The ingest-time column of each table the row counts cover. */
const TIME_COLUMN: Partial<Record<TableName, string>> = {
  vital_samples: 'ingested_at', spot_measurements: 'ingested_at', alarm_events: 'ingested_at', device_status: 'ingested_at', rejected_messages: 'ts',
}

/** Security events (bursts of refused input) of a tenant since `sinceMs`, newest first, at most 1,000. */
export async function securityEvents (storage: Storage, tenant: string, sinceMs: number): Promise<SecurityEvent[]> {
  await storage.flush()
  const { client, table } = storage.conn
  const rs = await client.query({
    query: `SELECT source, reasons, refusals, toUnixTimestamp64Milli(first_ts) AS firstMs, toUnixTimestamp64Milli(ts) AS lastMs
      FROM ${table('security_events')} WHERE tenant_id = {tenant:String} AND ts >= fromUnixTimestamp64Milli({since:Int64}) ORDER BY ts DESC LIMIT 1000`,
    query_params: { tenant, since: sinceMs },
    format: 'JSONEachRow',
  })
  return (await rs.json<Omit<SecurityEvent, 'firstMs' | 'lastMs'> & { firstMs: string | number; lastMs: string | number }>())
    .map((r) => ({ ...r, firstMs: Number(r.firstMs), lastMs: Number(r.lastMs) }))
}

/** The highest stored sequence number per device of a tenant (from `since` on): when a device's message became queryable. */
export async function storedSequences (storage: Storage, tenant: string, since: number): Promise<Array<{ device: string; seq: number }>> {
  return (await storedHeadsSince(storage, tenant, since)).heads
}

/** How far back of the newest head a poller asks again with several nodes: their inserts are not ordered among each other. */
const CLUSTER_HEADS_MARGIN_MS = 5000

/**
 * storedSequences, and where to ask from next time (`next`, for `storedSince`). device_heads' stored_at is
 * set by each insert when it runs (DEFAULT now64(3)), and one node inserts its heads one part after the
 * other (one insert in flight per table): a part not yet visible to this read was stamped at or after the
 * newest visible one. So asking again from the newest stamp in this answer (>=, the same millisecond can
 * hold two parts) misses nothing and repeats little. Several nodes' inserts interleave: there the next
 * ask goes back CLUSTER_HEADS_MARGIN_MS further. With nothing new, the next ask is the same as this one.
 */
export async function storedHeadsSince (storage: Storage, tenant: string, since: number, storedSinceMs?: number): Promise<{ heads: Array<{ device: string; seq: number }>; next: number | undefined }> {
  // embedded: from the node's own record of the heads it inserted, not a scan of the table's parts (stored-heads.ts)
  if (storage.heads !== null) return storage.heads.since(tenant, since, storedSinceMs)
  const { client, table, cluster } = storage.conn
  const stored = storedSinceMs === undefined ? '' : ' AND stored_at >= fromUnixTimestamp64Milli({storedSince:Int64})'
  const rs = await client.query({
    // (no alias named like a column: ClickHouse would read it in WHERE)
    // device_heads: a row per device and unmerged part, not per message
    query: `SELECT device_id AS device, toString(max(seq)) AS top, toUnixTimestamp64Milli(max(stored_at)) AS at FROM ${table('device_heads')}
      WHERE tenant_id = {tenant:String} AND seq >= {since:UInt64}${stored} GROUP BY device_id`,
    query_params: { tenant, since, ...(storedSinceMs === undefined ? {} : { storedSince: storedSinceMs }) }, format: 'JSONEachRow',
  })
  const rows = await rs.json<{ device: string; top: string; at: string | number }>()
  let newest = -1
  for (const r of rows) newest = Math.max(newest, Number(r.at))
  const next = newest < 0 ? storedSinceMs : cluster === undefined ? newest : Math.max(storedSinceMs ?? 0, newest - CLUSTER_HEADS_MARGIN_MS)
  return { heads: rows.map((r) => ({ device: r.device, seq: Number(r.top) })), next }
}

/** Rows stored per table for a tenant, ingested since `sinceMs`. */
export async function rowsPerTable (storage: Storage, tenant: string, sinceMs: number): Promise<Record<string, number>> {
  await storage.flush()
  const { client, table } = storage.conn
  const parts = (Object.keys(TIME_COLUMN) as TableName[]).map((t) =>
    `SELECT '${t}' AS table, count() AS rows FROM ${table(t)} WHERE tenant_id = {tenant:String} AND ${TIME_COLUMN[t]} >= fromUnixTimestamp64Milli({since:Int64})`)
  const rs = await client.query({ query: parts.join(' UNION ALL '), query_params: { tenant, since: sinceMs }, format: 'JSONEachRow' })
  const out: Record<string, number> = {}
  for (const r of await rs.json<{ table: string; rows: string | number }>()) out[r.table] = Number(r.rows)
  return out
}

export interface DashboardUser { user: string; statements: string[]; applied: boolean }

/**
 * The read-only ClickHouse user, profile, quota and row policies of a tenant's dashboards: applied on a
 * ClickHouse server; in embedded mode (chDB has no users or row policies) only returned.
 */
export async function applyDashboardUser (storage: Storage, tenant: string, password: string, serviceUser: string): Promise<DashboardUser> {
  const { conn } = storage
  const access = tenantAccessDdl(conn.database, tenant, password, serviceUser)
  const applied = conn.mode === 'server'
  if (applied) for (const statement of access.statements) await conn.client.command({ query: statement })
  return { user: access.user, statements: access.statements, applied }
}

/** A consent event as the tenant administrator's history shows it. */
export interface ConsentHistoryEntry { version: number; purpose: string; category: string; action: string; source: string; recordedBy: string; recordedAtMs: number; validFromMs: number }

/** Every consent grant and withdrawal of a patient, oldest first. */
export async function consentHistory (storage: Storage, tenant: string, patient: string): Promise<ConsentHistoryEntry[]> {
  const { client, table } = storage.conn
  const rs = await client.query({
    query: `SELECT version, purpose, category, action, source, recorded_by AS recordedBy, toString(toUnixTimestamp64Milli(recorded_at)) AS recordedAtMs,
         toString(toUnixTimestamp64Milli(valid_from)) AS validFromMs
       FROM ${table('consent_events')} WHERE tenant_id = {tenant:String} AND patient_id = {patient:String} ORDER BY version`,
    query_params: { tenant, patient }, format: 'JSONEachRow',
  })
  return (await rs.json<Omit<ConsentHistoryEntry, 'recordedAtMs' | 'validFromMs'> & { recordedAtMs: string; validFromMs: string }>())
    .map((r) => ({ ...r, version: Number(r.version), recordedAtMs: Number(r.recordedAtMs), validFromMs: Number(r.validFromMs) }))
}

/** The tenant's enabled user accounts and their roles (never a password hash). */
export async function tenantUsers (storage: Storage, tenant: string): Promise<Array<{ user: string; role: string; updatedAtMs: number }>> {
  const { client, table } = storage.conn
  const rs = await client.query({
    query: `SELECT user_id AS user, role, toString(toUnixTimestamp64Milli(updated_at)) AS updatedAtMs FROM ${table('users')} FINAL
       WHERE tenant_id = {tenant:String} AND disabled = 0 ORDER BY user_id`,
    query_params: { tenant }, format: 'JSONEachRow',
  })
  return (await rs.json<{ user: string; role: string; updatedAtMs: string }>()).map((r) => ({ user: r.user, role: r.role, updatedAtMs: Number(r.updatedAtMs) }))
}
