/**
 * Retention as ClickHouse TTL clauses, generated from the policy, the
 * tenants' own periods and the legal holds. Rows are deleted by TTL merges;
 * a patient under legal hold is excluded from every clause of tables that
 * hold patient data, so nothing of theirs expires until the hold is lifted.
 */
import { createHash } from 'node:crypto'
import { VITAL_CATEGORIES } from '../catalogue/index.ts'
import { CATEGORIES, type Category, type Policy } from './policy.ts'
import { sqlString } from '../sql.ts'

export interface RetentionInputs {
  policy: Policy
  /** tenant → category → days, where the tenant chose other than the default. */
  overrides: ReadonlyMap<string, Partial<Record<Category, number>>>
  holds: ReadonlyArray<{ tenant: string; patient: string }>
}

interface TableRetention {
  /** The row's time, as DateTime (TTL needs DateTime or Date). */
  time: string
  /** A category column, or the one category the whole table holds. */
  category: { column: string; values: readonly Category[] } | Category
  patientColumn: string | null
}

export const RETENTION_TABLES: Readonly<Record<string, TableRetention>> = {
  vital_samples: { time: 'toDateTime(ts)', category: { column: 'category', values: CATEGORIES.filter((c) => (VITAL_CATEGORIES as readonly string[]).includes(c)) }, patientColumn: 'patient_id' },
  spot_measurements: { time: 'toDateTime(ts)', category: 'spot_measurements', patientColumn: 'patient_id' },
  alarm_events: { time: 'toDateTime(ts)', category: 'alarm_events', patientColumn: 'patient_id' },
  device_status: { time: 'toDateTime(ts)', category: 'device_diagnostics', patientColumn: 'patient_id' },
  rejected_messages: { time: 'toDateTime(ts)', category: 'security_logs', patientColumn: null },
  security_events: { time: 'toDateTime(ts)', category: 'security_logs', patientColumn: null },
  access_log: { time: 'toDateTime(ts)', category: 'access_logs', patientColumn: 'patient_id' },
}

/** The TTL clause list of every table (for ALTER TABLE ... MODIFY TTL). */
export function retentionTtls (inputs: RetentionInputs): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [table, r] of Object.entries(RETENTION_TABLES)) {
    const held = r.patientColumn === null || inputs.holds.length === 0
      ? null
      : `(tenant_id, ${r.patientColumn}) NOT IN (${inputs.holds.map((h) => `(${sqlString(h.tenant)}, ${sqlString(h.patient)})`).join(', ')})`
    const categories = typeof r.category === 'string' ? [r.category] : r.category.values
    const clauses: string[] = []
    for (const c of categories) {
      const byCategory = typeof r.category === 'string' ? null : `${r.category.column} = ${sqlString(c)}`
      const defaultDays = inputs.policy.retention[c].defaultDays
      const own = [...inputs.overrides].filter(([, o]) => o[c] !== undefined && o[c] !== defaultDays).map(([t, o]) => [t, o[c]!] as const)
      const rest = own.length === 0 ? null : `tenant_id NOT IN (${own.map(([t]) => sqlString(t)).join(', ')})`
      clauses.push(clause(r.time, defaultDays, [byCategory, rest, held]))
      for (const [t, days] of own) clauses.push(clause(r.time, days, [byCategory, `tenant_id = ${sqlString(t)}`, held]))
    }
    out[table] = clauses.join(',\n    ')
  }
  return out
}

/**
 * What retention_applied records of a table's clauses: a digest, not the text (the clauses name held
 * patients, and that table is not erased). A start rewrites a table's TTL only when it changed.
 */
export function retentionDigest (ttl: string): string {
  return createHash('sha256').update(ttl).digest('hex')
}

function clause (time: string, days: number, conditions: Array<string | null>): string {
  const where = conditions.filter((c) => c !== null)
  return `${time} + toIntervalDay(${days})${where.length === 0 ? '' : ` DELETE WHERE ${where.join(' AND ')}`}`
}
