/** The tables in the forms the stages read them: codes by metric or column, ranges by proto field. */
import { ALARM_LOCATION } from './alarm.ts'
import { BRACELET, BRACELET_SERIES, METRICS, type Metric } from './bracelet.ts'
import type { Code } from './codes.ts'
import { BATTERY_RANGE } from './measure.ts'
import { SPOT, SPOT_COLUMNS, type SpotColumn } from './spot.ts'

type Coded = { [M in Metric]: (typeof BRACELET)[M]['code'] extends null ? never : M }[Metric]

/**
 * Metrics of vital_samples whose stored value is the exported quantity. sleep_stage
 * is not among them: its value is a stage, exported by SLEEP_STAGES.
 */
export const VITAL_CODES = Object.fromEntries(METRICS.flatMap((m) => {
  const c = BRACELET[m].code
  return c === null ? [] : [[m, c]]
})) as Readonly<Record<Coded, Code>>

export const SPOT_CODES = Object.fromEntries(SPOT_COLUMNS.map((c) => [c, SPOT[c].code])) as Readonly<Record<SpotColumn, Code>>

type RangeKey = (typeof BRACELET_SERIES)[number]['proto'] | 'battery' | (typeof SPOT)[SpotColumn]['proto'] | keyof typeof ALARM_LOCATION

/** Plausible ranges by proto field (battery: every family's battery_percent), as decode checks them. */
export const RANGES = {
  ...Object.fromEntries(BRACELET_SERIES.map((s) => [s.proto, s.range])),
  battery: BATTERY_RANGE,
  ...Object.fromEntries(SPOT_COLUMNS.map((c) => [SPOT[c].proto, SPOT[c].range])),
  ...Object.fromEntries(Object.values(ALARM_LOCATION).map((l) => [l.proto, l.range])),
} as Readonly<Record<RangeKey, readonly [number, number]>>
export type RangedField = RangeKey
