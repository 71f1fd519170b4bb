/**
 * What the export reads from each telemetry table and where each column sits in
 * a row, shared by export.ts (paging, NDJSON, CSV) and fhir-bundle.ts (FHIR).
 */
import type { TelemetryTable } from '../storage/index.ts'
import { SPOT_COLUMNS } from './codes.ts'

/** A row as JSONCompact gives it: ts ('YYYY-MM-DD hh:mm:ss.sss', UTC), device_id, seq (decimal text), then the source's columns. */
export type Value = string | number | null | string[]
export type Row = Value[]
export const HEAD = 3

export interface Source {
  /** The sort-key column before ts, read one value at a time; null when ts follows patient_id. */
  split: 'metric' | 'device_id' | null
  /** Keyset: the sort key from ts on, as [column, parameter type, position in Row]. */
  key: ReadonlyArray<readonly [string, string, number]>
  columns: readonly string[]
  /** Columns CSV gives a column of their own (the rest go to extra). */
  placed: ReadonlySet<string>
}

export const TS = ['ts', "DateTime64(3, 'UTC')", 0] as const
const DEVICE = ['device_id', 'String', 1] as const
const SEQ = ['seq', 'UInt64', 2] as const
const PROVENANCE = ['purpose', 'legal_basis', 'consent_version', 'ingested_at']
/** DateTime64 columns besides ts; exported as ISO 8601. */
export const TIMES = new Set(['ingested_at', 'last_sync'])

export const SOURCES: Record<TelemetryTable, Source> = {
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

/** Position of a column in a row of the table. */
export function at (table: TelemetryTable, column: string): number {
  const i = SOURCES[table].columns.indexOf(column)
  if (i < 0) throw new Error(`${table} has no exported column ${column}`)
  return HEAD + i
}
export const V = { idx: 3, metric: at('vital_samples', 'metric'), value: at('vital_samples', 'value'), duration: at('vital_samples', 'duration_ms') }
export const SPOT_AT = SPOT_COLUMNS.map((c) => [c, at('spot_measurements', c)] as const)

/** ClickHouse prints DateTime64(3, 'UTC') as '2024-05-01 12:00:00.250': fixed width, so text order is time order. */
export function iso (t: Value): string | null {
  return typeof t === 'string' ? `${t.slice(0, 10)}T${t.slice(11)}Z` : null
}

/** Where a format writes: text is gathered and flushed by the export loop. */
export interface Out { push: (s: string) => void }

export interface Format {
  tables: readonly TelemetryTable[]
  /** Split values left out. */
  skip: (split: string) => boolean
  head: string
  /** Appends the records of one row; returns how many. */
  row: (table: TelemetryTable, row: Row, out: Out) => number
  /** After a table's last row: appends what was held back; returns how many records. */
  endTable?: (table: TelemetryTable, out: Out) => number
  tail: () => string
}
