/**
 * The two per-patient flags, each an append-only event log (set, lift) and an
 * in-memory set: legal hold (the data survives erasure requests and
 * retention) and restriction (kept, hidden from every read but the rights export).
 */
import { insertRows, selectRows, type StorageConnection } from '../storage/index.ts'
import { audit, type Actor } from './audit.ts'

const FLAGS = {
  hold: { table: 'legal_holds', on: 'hold', audit: 'legal_hold' },
  restriction: { table: 'restrictions', on: 'restrict', audit: 'restriction' },
} as const
export type Flag = keyof typeof FLAGS

function key (tenant: string, patient: string): string { return `${tenant}\0${patient}` }

export class PatientFlags {
  private readonly set: Record<Flag, Set<string>> = { hold: new Set(), restriction: new Set() }

  private constructor (private readonly conn: StorageConnection) {}

  static async load (conn: StorageConnection): Promise<PatientFlags> {
    const f = new PatientFlags(conn)
    for (const [flag, spec] of Object.entries(FLAGS) as Array<[Flag, (typeof FLAGS)[Flag]]>) {
      for (const row of await selectRows<{ tenant_id: string; patient_id: string }>(conn, `SELECT tenant_id, patient_id FROM ${conn.table(spec.table)}
        GROUP BY tenant_id, patient_id HAVING argMax(action, ts) = {on:String}`, { on: spec.on })) f.set[flag].add(key(row.tenant_id, row.patient_id))
    }
    return f
  }

  has (flag: Flag, tenant: string, patient: string): boolean { return this.set[flag].has(key(tenant, patient)) }

  /** Every (tenant, patient) with the flag set. */
  list (flag: Flag): Array<{ tenant: string; patient: string }> {
    return [...this.set[flag]].map((k) => { const [tenant, patient] = k.split('\0') as [string, string]; return { tenant, patient } })
  }

  /** Appends a set/lift event to the flag's log, updates the in-memory set and the access log. */
  async change (flag: Flag, tenant: string, patient: string, on: boolean, actor: Actor, reason: string): Promise<void> {
    const f = FLAGS[flag]
    const why = reason.slice(0, 200)
    await insertRows(this.conn, f.table, [{ tenant_id: tenant, patient_id: patient, action: on ? f.on : 'lift', reason: why, recorded_by: actor.user, ts: Date.now() }])
    if (on) this.set[flag].add(key(tenant, patient))
    else this.set[flag].delete(key(tenant, patient))
    await audit(this.conn, tenant, actor, patient, on ? f.audit : `${f.audit}_lift`, why)
  }
}
