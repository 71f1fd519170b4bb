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
import { setImmediate as tick } from 'node:timers/promises'
import { patientId, tenantId } from '../ids.ts'
import { TELEMETRY_TABLES, type StorageConnection, type TelemetryTable } from '../storage/index.ts'
import { SLEEP_UNIT, SPOT_CODES, VITAL_CODES, loincOf, sleepStageCode, sleepStageName, type Code } from './codes.ts'
import { HEAD, SOURCES, SPOT_AT, TIMES, TS, V, at, iso, type Format, type Out, type Row, type Value } from './export-rows.ts'
import { fhir, registryDevices } from './fhir-bundle.ts'

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

export class ExportError extends Error {
  constructor (readonly code: 'ING_ERR_INVALID' | 'ING_ERR_OUTPUT', message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ExportError'
  }
}

/** Rows held per table, pages in flight included; a stream never pages by fewer than MIN_PAGE (each query costs ~8 ms before its first row). */
const PAGE_ROWS = 16_000
const MIN_PAGE = 2_000
/** Output goes to `out` in strings of about this many characters. */
const CHUNK = 64 * 1024

const KIND = at('alarm_events', 'kind')
/** Maps, not the objects: a stored metric named like an Object.prototype member must find nothing. */
const VITALS = new Map<string, Code>(Object.entries(VITAL_CODES))

/** (ts, device, seq, idx) order across the page streams of one table; idx only ever decides between vital samples. */
function before (a: Row, b: Row): boolean {
  if (a[0] !== b[0]) return (a[0] as string) < (b[0] as string)
  if (a[1] !== b[1]) return (a[1] as string) < (b[1] as string)
  const sa = a[2] as string
  const sb = b[2] as string
  if (sa !== sb) return sa.length !== sb.length ? sa.length < sb.length : sa < sb
  return (a[3] as number) < (b[3] as number)
}

/** One ordered page stream (a table, or one split value of it), one page ahead. */
class Reader {
  rows: Row[] = []
  at = 0
  private next: Promise<Row[]> | null

  constructor (private readonly fetch: (after: Row | null) => Promise<Row[]>, private readonly limit: number) {
    this.next = this.prefetch(null)
  }

  /** A failed page surfaces where it is awaited; abandoned after an error elsewhere, it must not become an unhandled rejection. */
  private prefetch (after: Row | null): Promise<Row[]> {
    const p = this.fetch(after)
    p.catch(() => {})
    return p
  }

  /** Moves to the next page; false when the stream is over. */
  async advance (): Promise<boolean> {
    if (this.next === null) return false
    this.rows = await this.next
    this.at = 0
    const last = this.rows[this.rows.length - 1]
    this.next = this.rows.length === this.limit && last !== undefined ? this.prefetch(last) : null
    return this.rows.length > 0
  }
}

/** Gathers output into chunks and waits for `out` to drain; an error or close of `out` ends the export. */
class Sink implements Out {
  private buf = ''
  private failed: Error | null = null
  private readonly onError = (err: Error): void => { this.failed ??= err }

  constructor (private readonly out: NodeJS.WritableStream | Writable) { out.on('error', this.onError) }

  push (s: string): void { this.buf += s }
  get full (): boolean { return this.buf.length >= CHUNK }

  async flush (): Promise<void> {
    const chunk = this.buf
    this.buf = ''
    const out = this.out as NodeJS.WritableStream & Partial<Writable>
    if (this.failed !== null) throw new ExportError('ING_ERR_OUTPUT', 'the output failed', { cause: this.failed })
    if (out.destroyed === true || out.writableEnded === true) throw new ExportError('ING_ERR_OUTPUT', 'the output was closed before the export ended')
    // yield even when `out` takes more: page queries are only dispatched from the event loop, and a long export must not starve the process
    if (chunk.length === 0 || out.write(chunk)) { await tick(); return }
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error): void => {
        out.off('drain', settle)
        out.off('close', closed)
        out.off('error', settle)
        if (err === undefined) resolve()
        else reject(new ExportError('ING_ERR_OUTPUT', 'the output failed', { cause: err }))
      }
      const closed = (): void => { settle(new Error('closed before the export ended')) }
      out.on('drain', settle)
      out.on('close', closed)
      out.on('error', settle)
    })
  }

  release (): void { this.out.off('error', this.onError) }
}

/** JSON text of a stored value; the few strings a patient's rows repeat (metric, purpose, model) are encoded once. */
function encoder (): (v: Value) => string {
  const seen = new Map<string, string>()
  return (v) => {
    if (typeof v === 'number') return String(v)
    if (typeof v !== 'string') return JSON.stringify(v)
    let e = seen.get(v)
    if (e === undefined) {
      e = JSON.stringify(v)
      if (seen.size < 4096) seen.set(v, e)
    }
    return e
  }
}

/**
 * NDJSON: { table, ts, device, seq, ...every other column } per row, times in
 * ISO 8601. Lines are concatenated, not built as objects: this is the hot loop.
 * seq is a device counter, far below 2^53; ClickHouse hands it over as digits.
 */
function ndjson (): Format {
  const json = encoder()
  const layout = new Map(TELEMETRY_TABLES.map((t) => [t, SOURCES[t].columns.map((c) => [`,"${c}":`, TIMES.has(c)] as const)]))
  return {
    tables: TELEMETRY_TABLES,
    skip: () => false,
    head: '',
    row (table, row, sink) {
      let line = `{"table":"${table}","ts":"${iso(row[0]!)}","device":${json(row[1]!)},"seq":${String(row[2])}`
      const columns = layout.get(table)!
      for (let i = 0; i < columns.length; i++) {
        const [key, time] = columns[i]!
        const v = row[HEAD + i]!
        line += key + (time && v !== null ? `"${iso(v)}"` : json(v))
      }
      sink.push(line + '}\n')
      return 1
    },
    tail: () => '',
  }
}

/** RFC 4180 field: quoted, quotes doubled, when it holds a comma, quote or line break. */
function field (v: Value): string {
  const s = v === null ? '' : String(v)
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s
}

/** The columns of a row that have no CSV column of their own, as one JSON object. */
function extra (table: TelemetryTable, row: Row, more?: Record<string, Value>): string {
  const { columns, placed } = SOURCES[table]
  const o: Record<string, Value> = {}
  columns.forEach((name, i) => { if (!placed.has(name)) o[name] = TIMES.has(name) ? iso(row[HEAD + i]!) : row[HEAD + i]! })
  return JSON.stringify(more === undefined ? o : { ...o, ...more })
}

/**
 * CSV: one line per vital sample, alarm event and device status row; a spot
 * measurement row gives one line per value it holds (metric = its column), so
 * each value has its own unit and LOINC code. A sleep epoch's value is its
 * duration in minutes, coded by its stage (its stage name is in extra). Alarm
 * lines carry their kind in metric. unit is the UCUM code; loinc is empty where
 * the value has no LOINC code (codes.ts). Whatever has no column of its own is in extra, as JSON.
 */
function csv (): Format {
  const line = (table: TelemetryTable, row: Row, idx: Value, metric: Value, value: Value, unit: string, loinc: string, more: string): string =>
    `${table},${iso(row[0]!)},${field(row[1]!)},${String(row[2])},${String(idx ?? '')},${field(metric)},${String(value ?? '')},${field(unit)},${loinc},${field(more)}\r\n`
  return {
    tables: TELEMETRY_TABLES,
    skip: () => false,
    head: 'table,ts,device,seq,idx,metric,value,unit,loinc,extra\r\n',
    row (table, row, sink) {
      if (table === 'vital_samples') {
        const metric = row[V.metric] as string
        if (metric === 'sleep_stage') {
          const stage = row[V.value] as number
          const c = sleepStageCode(stage)
          const minutes = (row[V.duration] as number) * SLEEP_UNIT.perMs
          sink.push(line(table, row, row[V.idx]!, metric, minutes, c.ucum, loincOf(c), extra(table, row, { stage: sleepStageName(stage) })))
          return 1
        }
        const code = VITALS.get(metric)
        sink.push(line(table, row, row[V.idx]!, metric, row[V.value]!, code?.ucum ?? '', code === undefined ? '' : loincOf(code), extra(table, row)))
        return 1
      }
      if (table === 'spot_measurements') {
        const more = extra(table, row)
        let n = 0
        for (const [column, i] of SPOT_AT) {
          if (row[i] === null) continue
          sink.push(line(table, row, null, column, row[i]!, SPOT_CODES[column].ucum, loincOf(SPOT_CODES[column]), more))
          n++
        }
        return n
      }
      sink.push(line(table, row, null, table === 'alarm_events' ? row[KIND]! : null, null, '', '', extra(table, row)))
      return 1
    },
    tail: () => '',
  }
}

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
