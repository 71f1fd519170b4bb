/**
 * The NDJSON and CSV export formats (FHIR is fhir-bundle.ts): each turns a
 * stored row into lines on the sink and says how many data lines it wrote.
 */
import { SLEEP_UNIT, SPOT_CODES, VITAL_CODES, loincOf, sleepStageCode, sleepStageName, type Code } from './codes.ts'
import { HEAD, SOURCES, SPOT_AT, TIMES, V, at, iso, type Format, type Row, type Value } from './export-rows.ts'
import { TELEMETRY_TABLES, type TelemetryTable } from '../storage/index.ts'

const KIND = at('alarm_events', 'kind')
/** Maps, not the objects: a stored metric named like an Object.prototype member must find nothing. */
const VITALS = new Map<string, Code>(Object.entries(VITAL_CODES))

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
export function ndjson (): Format {
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
export function csv (): Format {
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
