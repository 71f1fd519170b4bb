/** The right of access: everything held on one patient, with purposes, categories, recipients, retention and source, and who looked at it. */
import { CATEGORIES, type Category, type Policy, type ProcessingActivity } from '../consent/index.ts'
import type { Registry } from '../registry/index.ts'
import { selectRows, type Storage } from '../storage/index.ts'

const TELEMETRY: ReadonlyArray<{ table: string; category: string }> = [
  { table: 'vital_samples', category: 'category' },
  { table: 'spot_measurements', category: "'spot_measurements'" },
  { table: 'alarm_events', category: "if(latitude IS NULL, 'alarm_events', 'alarm_events+location')" },
  { table: 'device_status', category: "'device_diagnostics'" },
]

export interface AccessReport {
  tenant: string
  patient: string
  controller: string
  processor: string
  generatedAtMs: number
  legalHold: boolean
  restricted: boolean
  data: Array<{
    table: string; categories: Category[]; purpose: string; legalBasis: string; rows: number; firstMs: number; lastMs: number
    source: Array<{ device: string; family: string }>; retentionDays: number; recipients: readonly string[]
  }>
  consent: Array<Record<string, unknown>>
  rectifications: Array<Record<string, unknown>>
  accessedBy: Array<Record<string, unknown>>
  processing: ProcessingActivity[]
  categoriesWithoutData: Category[]
}

/** What the report takes from the rest of the rights stage. */
export interface AccessReportSources {
  storage: Storage
  registry: Registry
  policy: Policy
  retentionDays: (tenant: string, category: Category) => number
  legalHold: boolean
  restricted: boolean
  processing: ProcessingActivity[]
}

export async function accessReport (tenant: string, patient: string, s: AccessReportSources): Promise<AccessReport> {
  await s.storage.flush()
  const conn = s.storage.conn
  const t = conn.table
  const params = { tenant, patient }
  const who = 'tenant_id = {tenant:String} AND patient_id = {patient:String}'
  const data: AccessReport['data'] = []
  for (const { table, category } of TELEMETRY) {
    const rows = await selectRows<{ category: string; purpose: string; legal_basis: string; n: string; first: string; last: string; devices: string[] }>(conn,
      `SELECT ${category} AS category, purpose, legal_basis, count() AS n, toString(toUnixTimestamp64Milli(min(ts))) AS first,
         toString(toUnixTimestamp64Milli(max(ts))) AS last, groupUniqArray(device_id) AS devices
       FROM ${t(table)} WHERE ${who} GROUP BY category, purpose, legal_basis ORDER BY category`, params)
    for (const r of rows) {
      const categories = r.category.split('+') as Category[]
      data.push({
        table, categories, purpose: r.purpose, legalBasis: r.legal_basis, rows: Number(r.n), firstMs: Number(r.first), lastMs: Number(r.last),
        source: r.devices.sort().map((d) => ({ device: d, family: s.registry.device(d)?.family ?? 'unknown' })),
        retentionDays: Math.max(...categories.map((c) => s.retentionDays(tenant, c))),
        recipients: s.policy.recipients[r.purpose as keyof Policy['recipients']] ?? [],
      })
    }
  }
  const consent = await selectRows<Record<string, unknown>>(conn, `SELECT version, purpose, category, action, source, recorded_by,
    toUnixTimestamp64Milli(recorded_at) AS recorded_ms, toUnixTimestamp64Milli(valid_from) AS valid_from_ms
    FROM ${t('consent_events')} WHERE ${who} ORDER BY version`, params)
  const accessedBy = await selectRows<Record<string, unknown>>(conn, `SELECT user_id AS user, role, action, detail, remote_address,
    toUnixTimestamp64Milli(ts) AS ts_ms FROM ${t('access_log')} WHERE ${who} ORDER BY ts`, params)
  const rectifications = await selectRows<Record<string, unknown>>(conn, `SELECT target, device_id, toString(seq) AS seq, idx, original, corrected, reason, recorded_by,
    toUnixTimestamp64Milli(ts) AS ts_ms FROM ${t('rectifications')} WHERE ${who} ORDER BY ts`, params)
  return {
    tenant, patient, controller: s.registry.tenantName(tenant) ?? tenant, processor: s.policy.processor, generatedAtMs: Date.now(),
    legalHold: s.legalHold, restricted: s.restricted,
    data, consent, rectifications, accessedBy, processing: s.processing,
    categoriesWithoutData: CATEGORIES.filter((c) => !data.some((d) => d.categories.includes(c))),
  }
}
