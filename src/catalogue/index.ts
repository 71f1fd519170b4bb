/**
 * What each device family measures: field, metric, unit, plausible range,
 * consent category, instantaneous or interval, clinical codes. A leaf: it
 * imports nothing from the other stages, and every stage derives its lists
 * from it (decode limits, rows, consent categories, the API, the export, the
 * device models' expectations).
 */
export type { Extent, Measure, MeasuredCategory } from './measure.ts'
export { BATTERY_RANGE } from './measure.ts'
export {
  BRACELET, BRACELET_CATEGORY, BRACELET_FRAME_FIELDS, BRACELET_SERIES, METRICS, QUERYABLE_METRICS, VITAL_CATEGORIES,
} from './bracelet.ts'
export type { BraceletMeasure, BraceletSeriesField, Metric, QueryableMetric, SeriesMetric } from './bracelet.ts'
export { SPOT, SPOT_COLUMNS, SPOT_FRAME_FIELDS } from './spot.ts'
export type { SpotColumn, SpotField, SpotMeasure } from './spot.ts'
export { ALARM_BATTERY, ALARM_LOCATION } from './alarm.ts'
export { STREAM_TABLE } from './streams.ts'
export type { CatalogueStream, CatalogueTable } from './streams.ts'
export * from './codes.ts'
export { VITAL_CODES, SPOT_CODES, RANGES } from './derived.ts'
export type { RangedField } from './derived.ts'
