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
 * FHIR carries health observations only: vital samples (not battery, which is
 * device diagnostics) and spot measurements. Alarm events and device status are
 * service records, not observations; they are in NDJSON and CSV.
 */
import { randomUUID } from 'node:crypto'
import type { Writable } from 'node:stream'
import { setImmediate as tick } from 'node:timers/promises'
import { patientId, tenantId } from '../ids.ts'
import type { StorageConnection } from '../storage/connection.ts'
import { TELEMETRY_TABLES, type TelemetryTable } from '../storage/rows.ts'
import {
  BLOOD_PRESSURE_PANEL, DIAGNOSTIC_UNITS, FHIR_CATEGORY, SPOT_CODES, SPOT_COLUMNS, UCUM, VITAL_CODES,
  fhirCode, sleepStageConcept, sleepStageName, type Code, type ObservationCategory,
} from './codes.ts'

export type ExportFormat = 'fhir' | 'ndjson' | 'csv'
export interface ExportRequest { tenant: string; patient: string; format: ExportFormat; fromMs?: number; toMs?: number }
/** rows: rows read from ClickHouse; resources: Observations (fhir) or data lines (ndjson, csv) written. */
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

/** A row as JSONCompact gives it: ts ('YYYY-MM-DD hh:mm:ss.sss', UTC), device_id, seq (decimal text), then the source's columns. */
type Value = string | number | null | string[]
type Row = Value[]
const HEAD = 3

interface Source {
  /** The sort-key column before ts, read one value at a time; null when ts follows patient_id. */
  split: 'metric' | 'device_id' | null
  /** Keyset: the sort key from ts on, as [column, parameter type, position in Row]. */
  key: ReadonlyArray<readonly [string, string, number]>
  columns: readonly string[]
  /** Columns CSV gives a column of their own (the rest go to extra). */
  placed: ReadonlySet<string>
}

const TS = ['ts', "DateTime64(3, 'UTC')", 0] as const
const DEVICE = ['device_id', 'String', 1] as const
const SEQ = ['seq', 'UInt64', 2] as const
const PROVENANCE = ['purpose', 'legal_basis', 'consent_version', 'ingested_at']
/** DateTime64 columns besides ts; exported as ISO 8601. */
const TIMES = new Set(['ingested_at', 'last_sync'])

const SOURCES: Record<TelemetryTable, Source> = {
  vital_samples: {
    split: 'metric', key: [TS, DEVICE, SEQ, ['idx', 'UInt16', 3]], placed: new Set(['idx', 'metric', 'value']),
    columns: ['idx', 'metric', 'category', 'value', 'duration_ms', 'quality', ...PROVENANCE],
  },
  spot_measurements: { split: null, key: [TS, DEVICE, SEQ], placed: new Set(SPOT_COLUMNS), columns: ['meter_model', ...SPOT_COLUMNS, ...PROVENANCE] },
  alarm_events: {
    split: null, key: [TS, DEVICE, SEQ], placed: new Set(['kind']),
    columns: ['kind', 'battery', 'latitude', 'longitude', 'accuracy_m', 'location_consent_version', ...PROVENANCE],
  },
  device_status: {
    split: 'device_id', key: [TS, SEQ], placed: new Set(),
    columns: ['model', 'firmware', 'serial_number', 'battery', 'last_sync', 'diagnostics', ...PROVENANCE],
  },
}

function at (table: TelemetryTable, column: string): number {
  const i = SOURCES[table].columns.indexOf(column)
  if (i < 0) throw new Error(`${table} has no exported column ${column}`)
  return HEAD + i
}
const V = { idx: 3, metric: at('vital_samples', 'metric'), value: at('vital_samples', 'value'), duration: at('vital_samples', 'duration_ms') }
const SPOT_AT = SPOT_COLUMNS.map((c) => [c, at('spot_measurements', c)] as const)
const KIND = at('alarm_events', 'kind')
/** Maps, not the objects: a stored metric named like an Object.prototype member must find nothing. */
const VITALS = new Map<string, Code>(Object.entries(VITAL_CODES))
const DIAGNOSTICS = new Map(Object.entries(DIAGNOSTIC_UNITS))

/** ClickHouse prints DateTime64(3, 'UTC') as '2024-05-01 12:00:00.250': fixed width, so text order is time order. */
function iso (t: Value): string | null {
  return typeof t === 'string' ? `${t.slice(0, 10)}T${t.slice(11)}Z` : null
}

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
class Sink {
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

interface Format {
  tables: readonly TelemetryTable[]
  /** Split values left out (FHIR: diagnostics metrics). */
  skip: (split: string) => boolean
  head: string
  /** Appends the records of one row; returns how many. */
  row: (table: TelemetryTable, row: Row, sink: Sink) => number
  tail: () => string
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
      let line = `{"table":"${table}","ts":"${iso(row[0]!)}","device":${json(row[1]!)},"seq":${row[2]}`
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
 * each value has its own unit and LOINC code. Alarm lines carry their kind in
 * metric. unit is the UCUM code. Whatever has no column of its own is in extra, as JSON.
 */
function csv (): Format {
  const line = (table: TelemetryTable, row: Row, idx: Value, metric: Value, value: Value, unit: string, loinc: string, more: string): string =>
    `${table},${iso(row[0]!)},${field(row[1]!)},${row[2]},${idx ?? ''},${field(metric)},${value ?? ''},${field(unit)},${loinc},${field(more)}\r\n`
  return {
    tables: TELEMETRY_TABLES,
    skip: () => false,
    head: 'table,ts,device,seq,idx,metric,value,unit,loinc,extra\r\n',
    row (table, row, sink) {
      if (table === 'vital_samples') {
        const metric = row[V.metric] as string
        const code = VITALS.get(metric)
        const more = extra(table, row, metric === 'sleep_stage' ? { stage: sleepStageName(row[V.value] as number) } : undefined)
        sink.push(line(table, row, row[V.idx]!, metric, row[V.value]!, code?.ucum ?? DIAGNOSTICS.get(metric) ?? '', code?.loinc ?? '', more))
        return 1
      }
      if (table === 'spot_measurements') {
        const more = extra(table, row)
        let n = 0
        for (const [column, i] of SPOT_AT) {
          if (row[i] === null) continue
          sink.push(line(table, row, null, column, row[i]!, SPOT_CODES[column].ucum, SPOT_CODES[column].loinc, more))
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

const quantity = (value: Value, c: Code): Record<string, unknown> => ({ value, unit: c.unit, system: UCUM, code: c.ucum })

/**
 * FHIR R4: one Bundle (type collection), entries written as they are made. Each
 * Observation's identifier is the table's urn with `device/seq/idx` (vital
 * samples) or `device/seq/column` (spot measurements; blood_pressure for the
 * panel), so a value can be matched to its stored row. sleep_stage values are
 * valueCodeableConcept (codes.ts, SLEEP_STAGES); every other value is a UCUM valueQuantity.
 */
function fhir (patient: string): Format {
  const subject = { reference: `Patient/${patient}` }
  let entries = 0
  const entry = (sink: Sink, resource: Record<string, unknown>): void => {
    // FHIR JSON has no empty arrays: "entry" opens with the first resource
    sink.push((entries++ === 0 ? ',"entry":[' : ',') + JSON.stringify({ fullUrl: `urn:uuid:${randomUUID()}`, resource }))
  }
  const observation = (row: Row, table: string, id: string, category: ObservationCategory, code: unknown, durationMs: number): Record<string, unknown> => {
    const start = iso(row[0]!)!
    return {
      resourceType: 'Observation',
      identifier: [{ system: `urn:vitalflow:${table}`, value: `${row[1]}/${row[2]}/${id}` }],
      status: 'final',
      category: FHIR_CATEGORY[category],
      code,
      subject,
      ...(durationMs > 0 ? { effectivePeriod: { start, end: new Date(Date.parse(start) + durationMs).toISOString() } } : { effectiveDateTime: start }),
      device: { display: row[1] },
    }
  }
  const vitalCodes = new Map([...VITALS].map(([m, c]) => [m, fhirCode(c)]))
  const spotCodes = new Map(SPOT_COLUMNS.map((c) => [c, fhirCode(SPOT_CODES[c])]))
  const panel = fhirCode(BLOOD_PRESSURE_PANEL)
  return {
    tables: ['vital_samples', 'spot_measurements'],
    skip: (metric) => DIAGNOSTICS.has(metric),
    head: `{"resourceType":"Bundle","type":"collection","timestamp":"${new Date().toISOString()}"`,
    row (table, row, sink) {
      if (table === 'vital_samples') {
        const metric = row[V.metric] as string
        const c = VITALS.get(metric)
        const value = row[V.value]!
        const o = observation(row, table, String(row[V.idx]), c?.category ?? 'vital-signs', vitalCodes.get(metric) ?? { text: metric }, row[V.duration] as number)
        if (c === undefined) o['valueQuantity'] = { value } // a metric missing from the code table still goes out, named
        else if (metric === 'sleep_stage') o['valueCodeableConcept'] = sleepStageConcept(value as number)
        else o['valueQuantity'] = quantity(value, c)
        entry(sink, o)
        return 1
      }
      let n = 0
      const component = []
      for (const [column, i] of SPOT_AT) {
        const value = row[i]!
        if (value === null) continue
        const c = SPOT_CODES[column]
        if (column === 'systolic' || column === 'diastolic') {
          component.push({ code: spotCodes.get(column), valueQuantity: quantity(value, c) })
        } else {
          entry(sink, { ...observation(row, table, column, c.category, spotCodes.get(column), 0), valueQuantity: quantity(value, c) })
          n++
        }
      }
      if (component.length === 0) return n
      entry(sink, { ...observation(row, table, 'blood_pressure', 'vital-signs', panel, 0), component })
      return n + 1
    },
    tail: () => (entries > 0 ? ']}' : '}'),
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
  const format = req.format === 'fhir' ? fhir(req.patient) : req.format === 'ndjson' ? ndjson() : csv()
  const rows = async (query: string, params: Record<string, unknown>): Promise<Row[]> =>
    (await (await conn.client.query({ query, query_params: params, format: 'JSONCompact' })).json<Row>()).data

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
    }
    sink.push(format.tail())
    await sink.flush()
  } finally {
    sink.release()
  }
  return { rows: read, resources }
}
