/**
 * Data portability (GDPR art. 20): what vitalflow holds about one patient of one
 * tenant, streamed to `out` as a FHIR R4 Bundle, NDJSON or CSV.
 *
 * Memory stays bounded however long the history. chDB's client materialises a
 * whole result before handing out its first byte, so no table is read in one
 * query: each is read in pages with keyset pagination on its sort key, one page
 * ahead, and `out`'s backpressure is awaited. Where the sort key puts a column
 * before ts (vital_samples: metric; device_status: device_id), every value of
 * that column is its own page stream (a range of the primary key, read in order)
 * and the streams are merged here, so rows still leave in time order. Each
 * table is exported in (ts, device, seq[, idx]) order, one table after another.
 *
 * NDJSON has every stored column as stored; CSV one line per value with its
 * unit and LOINC code; FHIR is in fhir-bundle.ts. All three carry all four
 * telemetry tables (vital samples, spot measurements, alarm events, device status).
 */
import type { Writable } from 'node:stream'
import { patientId, tenantId } from '../ids.ts'
import type { StorageConnection } from '../storage/index.ts'
import { ExportError } from './errors.ts'
import { csv, ndjson } from './export-formats.ts'
import { Reader, Sink, before } from './export-paging.ts'
import { SOURCES, TS, type Row } from './export-rows.ts'
import { fhir, registryDevices } from './fhir-bundle.ts'

export { ExportError } from './errors.ts'

export type ExportFormat = 'fhir' | 'ndjson' | 'csv'
export interface ExportRequest {
  tenant: string
  patient: string
  format: ExportFormat
  fromMs?: number
  toMs?: number
  /** FHIR only: a bracelet series as one Observation per metric and message (valueSampledData) instead of one per sample. */
  sampled?: boolean
}
/** rows: rows read from ClickHouse; resources: Observations (fhir; not the Patient, Device and CodeSystem) or data lines (ndjson, csv) written. */
export interface ExportResult { rows: number; resources: number }

/** Rows held per table, pages in flight included; a stream never pages by fewer than MIN_PAGE (each query costs ~8 ms before its first row). */
const PAGE_ROWS = 16_000
const MIN_PAGE = 2_000

function check (req: ExportRequest): void {
  if (!['fhir', 'ndjson', 'csv'].includes(req.format)) throw new ExportError('ING_ERR_INVALID', 'format must be fhir, ndjson or csv')
  for (const k of ['fromMs', 'toMs'] as const) {
    const v = req[k]
    if (v !== undefined && !Number.isSafeInteger(v)) throw new ExportError('ING_ERR_INVALID', `${k} must be an integer (ms since the Unix epoch)`)
  }
  if (req.fromMs !== undefined && req.toMs !== undefined && req.fromMs > req.toMs) throw new ExportError('ING_ERR_INVALID', 'fromMs is after toMs')
}

/**
 * Streams the patient's data to `out` (fromMs inclusive, toMs exclusive, on ts).
 * Does not end `out`: the caller owns it. Rejects with ExportError when the
 * request is invalid or `out` fails or closes, with InvalidIdError for a bad
 * id, and with the storage error when a query fails.
 */
export async function exportPatient (conn: StorageConnection, req: ExportRequest, out: NodeJS.WritableStream | Writable): Promise<ExportResult> {
  check(req)
  const base: Record<string, unknown> = { tenant: tenantId(req.tenant), patient: patientId(req.patient) }
  let scope = 'tenant_id = {tenant:String} AND patient_id = {patient:String}'
  if (req.fromMs !== undefined) { scope += " AND ts >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')"; base['fromMs'] = req.fromMs }
  if (req.toMs !== undefined) { scope += " AND ts < fromUnixTimestamp64Milli({toMs:Int64}, 'UTC')"; base['toMs'] = req.toMs }
  const rows = async (query: string, params: Record<string, unknown>): Promise<Row[]> =>
    (await (await conn.client.query({ query, query_params: params, format: 'JSONCompact' })).json<Row>()).data
  const format = req.format === 'fhir'
    ? fhir({ tenant: req.tenant, patient: req.patient, sampled: req.sampled === true, devices: await registryDevices(conn, base, rows) })
    : req.format === 'ndjson' ? ndjson() : csv()

  const sink = new Sink(out)
  let read = 0
  let resources = 0
  try {
    sink.push(format.head)
    for (const table of format.tables) {
      const s = SOURCES[table]
      const keys = s.key.map(([c]) => c).join(', ')
      // the separate ts bound lets the primary key skip what is behind the cursor; the tuple is the exact keyset condition
      const after = ` AND ts >= {k0:${TS[1]}} AND (${keys}) > (${s.key.map(([, type], i) => `{k${i}:${type}}`).join(', ')})`
      const select = `SELECT ts, device_id, toString(seq), ${s.columns.join(', ')} FROM ${conn.table(table)} WHERE ${scope}` +
        (s.split === null ? '' : ` AND ${s.split} = {split:String}`)
      const splits = s.split === null
        ? [null]
        : (await rows(`SELECT DISTINCT ${s.split} FROM ${conn.table(table)} WHERE ${scope} ORDER BY ${s.split}`, base)).map((r) => r[0] as string).filter((v) => !format.skip(v))
      const limit = Math.max(MIN_PAGE, Math.ceil(PAGE_ROWS / 2 / splits.length))
      const readers = splits.map((split) => new Reader(async (last) => {
        const params: Record<string, unknown> = split === null ? { ...base, limit } : { ...base, split, limit }
        if (last !== null) s.key.forEach(([, , position], i) => { params[`k${i}`] = last[position] })
        return await rows(`${select}${last === null ? '' : after} ORDER BY ${keys} LIMIT {limit:UInt32}`, params)
      }, limit))
      let live: Reader[] = []
      for (const r of readers) if (await r.advance()) live.push(r)
      while (live.length > 0) {
        // emit in key order until a page is used up or a chunk is full
        let r: Reader
        do {
          r = live[0]!
          for (let i = 1; i < live.length; i++) if (before(live[i]!.rows[live[i]!.at]!, r.rows[r.at]!)) r = live[i]!
          resources += format.row(table, r.rows[r.at++]!, sink)
          read++
        } while (r.at < r.rows.length && !sink.full)
        if (sink.full) await sink.flush()
        if (r.at === r.rows.length && !(await r.advance())) live = live.filter((x) => x !== r)
      }
      if (format.endTable !== undefined) resources += format.endTable(table, sink)
    }
    sink.push(format.tail())
    await sink.flush()
  } finally {
    sink.release()
  }
  return { rows: read, resources }
}
