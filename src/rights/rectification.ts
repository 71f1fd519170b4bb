/**
 * Rectification: a professional marks a stored value as erroneous; reads show the correction, the audit keeps both values.
 *
 * On a ClickHouse cluster (VF_CLICKHOUSE_CLUSTER) the correction is a mutation of the local table ON
 * CLUSTER, waited for on every replica. Its text is kept where a single server keeps none: in the
 * distributed DDL queue and the table's mutation queue in Keeper, and in Keeper's own logs. So there
 * it names the value by tenant, device and sequence number (and index), not by patient: the reads
 * before it check, through the Distributed table, that those select this patient's value and no
 * other row.
 */
import { SPOT_COLUMNS } from '../catalogue/index.ts'
import { insertRows, rewriteSettings, rewriteTarget, runCommand, selectRows, type Storage } from '../storage/index.ts'
import { audit, type Actor } from './audit.ts'
import { RightsError } from './errors.ts'

/** Values a professional may rectify: table.column → the row key columns. */
const RECTIFIABLE: Readonly<Record<string, { table: string; column: string; byIdx: boolean }>> = {
  'vital_samples.value': { table: 'vital_samples', column: 'value', byIdx: true },
  ...Object.fromEntries(SPOT_COLUMNS.map((c) =>
    [`spot_measurements.${c}`, { table: 'spot_measurements', column: c, byIdx: false }])),
}
export const RECTIFIABLE_TARGETS = Object.keys(RECTIFIABLE)

export interface Rectification { target: string; device: string; seq: number; idx?: number | undefined; corrected: number; reason: string }

const SYNC = { mutations_sync: '2' } as const

/** Corrects one stored value of a known patient, logs both values and audits the change. */
export async function rectify (storage: Storage, tenant: string, patient: string, r: Rectification, actor: Actor): Promise<{ original: number; corrected: number }> {
  const conn = storage.conn
  const spec = RECTIFIABLE[r.target]
  if (spec === undefined) throw new RightsError('ING_ERR_INVALID', `target must be one of ${RECTIFIABLE_TARGETS.join(', ')}`)
  if (!Number.isFinite(r.corrected)) throw new RightsError('ING_ERR_INVALID', 'the correction must be a number')
  const key = `tenant_id = {tenant:String} AND device_id = {device:String} AND seq = {seq:UInt64}${spec.byIdx ? ' AND idx = {idx:UInt16}' : ''}`
  const where = `tenant_id = {tenant:String} AND patient_id = {patient:String} AND device_id = {device:String} AND seq = {seq:UInt64}${spec.byIdx ? ' AND idx = {idx:UInt16}' : ''}`
  const params = { tenant, patient, device: r.device, seq: r.seq, idx: r.idx ?? 0, corrected: r.corrected }
  await storage.flush()
  const found = await selectRows<{ v: number | null }>(conn, `SELECT ${spec.column} AS v FROM ${conn.table(spec.table)} WHERE ${where} LIMIT 1`, params)
  if (found.length === 0 || found[0]!.v === null) throw new RightsError('ING_ERR_NOT_FOUND', 'no such stored value')
  const original = Number(found[0]!.v)
  if (conn.cluster !== undefined) {
    // the mutation names the value without the patient: its key must select this patient's rows only
    const [n] = await selectRows<{ others: string }>(conn, `SELECT toString(countIf(patient_id != {patient:String})) AS others FROM ${conn.table(spec.table)} WHERE ${key}`, params)
    if (Number(n?.others ?? 0) > 0) throw new RightsError('ING_ERR_INVALID', 'that device and sequence number also hold another patient\'s value; not rectified')
  }
  await insertRows(conn, 'rectifications', [{
    tenant_id: tenant, patient_id: patient, target: r.target, device_id: r.device, seq: r.seq, idx: r.idx ?? 0, original, corrected: r.corrected,
    reason: r.reason.slice(0, 500), recorded_by: actor.user, ts: Date.now(),
  }])
  if (conn.cluster === undefined) {
    await runCommand(conn, `ALTER TABLE ${conn.table(spec.table)} UPDATE ${spec.column} = {corrected:Float64} WHERE ${where}`, params, SYNC)
  } else {
    const { patient: _named, ...unnamed } = params
    await runCommand(conn, `ALTER TABLE ${rewriteTarget(conn, spec.table)} UPDATE ${spec.column} = {corrected:Float64} WHERE ${key}`, unnamed, rewriteSettings(conn, SYNC))
  }
  await audit(conn, tenant, actor, patient, 'rectification', `${r.target} ${r.device}/${r.seq}/${r.idx ?? 0}`)
  return { original, corrected: r.corrected }
}
