/** Rectification: a professional marks a stored value as erroneous; reads show the correction, the audit keeps both values. */
import { SPOT_COLUMNS } from '../catalogue/index.ts'
import { insertRows, runCommand, selectRows, type Storage } from '../storage/index.ts'
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
  const where = `tenant_id = {tenant:String} AND patient_id = {patient:String} AND device_id = {device:String} AND seq = {seq:UInt64}${spec.byIdx ? ' AND idx = {idx:UInt16}' : ''}`
  const params = { tenant, patient, device: r.device, seq: r.seq, idx: r.idx ?? 0, corrected: r.corrected }
  await storage.flush()
  const found = await selectRows<{ v: number | null }>(conn, `SELECT ${spec.column} AS v FROM ${conn.table(spec.table)} WHERE ${where} LIMIT 1`, params)
  if (found.length === 0 || found[0]!.v === null) throw new RightsError('ING_ERR_NOT_FOUND', 'no such stored value')
  const original = Number(found[0]!.v)
  await insertRows(conn, 'rectifications', [{
    tenant_id: tenant, patient_id: patient, target: r.target, device_id: r.device, seq: r.seq, idx: r.idx ?? 0, original, corrected: r.corrected,
    reason: r.reason.slice(0, 500), recorded_by: actor.user, ts: Date.now(),
  }])
  await runCommand(conn, `ALTER TABLE ${conn.table(spec.table)} UPDATE ${spec.column} = {corrected:Float64} WHERE ${where}`, params, SYNC)
  await audit(conn, tenant, actor, patient, 'rectification', `${r.target} ${r.device}/${r.seq}/${r.idx ?? 0}`)
  return { original, corrected: r.corrected }
}
