/**
 * What a Corsano bracelet measures (proto/corsano.proto, BraceletBatch), one
 * entry per metric as stored in vital_samples.metric. Adding a metric is the
 * .proto field, one entry here and the device model's signal
 * (devices/corsano.ts); decode, rows, consent, the API, the export and the
 * simulator's expectation follow from this table, and test/catalogue.test.ts
 * walks the .proto fields to prove it.
 *
 * shape: series — a regularly sampled Series field, one row per value;
 * epochs — the sleep epochs, one row each (value: stage, duration_ms: length);
 * scalar — one value per batch, stored at the window's end (battery).
 */
import { BATTERY, HEART_RATE, SPO2, code, loinc, own } from './codes.ts'
import { BATTERY_RANGE, type Measure } from './measure.ts'

export interface BraceletMeasure extends Measure { shape: 'series' | 'epochs' | 'scalar' }

export const BRACELET = {
  heart_rate: { proto: 'heart_rate', field: 'heartRate', shape: 'series', unit: '/min', range: [0, 300], category: 'vitals', extent: 'instant', code: HEART_RATE },
  hrv_rmssd: {
    proto: 'hrv_rmssd', field: 'hrvRmssd', shape: 'series', unit: 'ms', range: [0, 2000], category: 'vitals', extent: 'instant',
    code: code([own('hrv-rmssd')], 'ms', 'ms', 'vital-signs', 'Heart rate variability, RMSSD (no LOINC or MDC code: vitalflow code system)'),
  },
  spo2: { proto: 'spo2', field: 'spo2', shape: 'series', unit: '%', range: [0, 100], category: 'vitals', extent: 'instant', code: SPO2 },
  respiration_rate: {
    proto: 'respiration_rate', field: 'respirationRate', shape: 'series', unit: '/min', range: [0, 120], category: 'vitals', extent: 'instant',
    code: code([loinc('9279-1', 'Respiratory rate')], '/min', 'breaths/minute', 'vital-signs'),
  },
  skin_temperature: {
    proto: 'skin_temperature', field: 'skinTemperature', shape: 'series', unit: 'Cel', range: [0, 50], category: 'vitals', extent: 'instant',
    code: code([loinc('39106-0', 'Temperature of Skin')], 'Cel', '°C', 'vital-signs'),
  },
  steps: {
    proto: 'steps', field: 'steps', shape: 'series', unit: '{steps}', range: [0, 10_000], category: 'activity', extent: 'interval',
    code: code([loinc('55423-8', 'Number of steps in unspecified time Pedometer')], '{steps}', 'steps', 'activity'),
  },
  active_energy: {
    proto: 'active_energy', field: 'activeEnergy', shape: 'series', unit: 'kcal', range: [0, 10_000], category: 'activity', extent: 'interval',
    code: code([loinc('41981-2', 'Calories burned')], 'kcal', 'kcal', 'activity'),
  },
  // from air pressure: climbing and weather, not where the wearer is (location is the cAlarm's GPS fix)
  barometric_altitude: {
    proto: 'barometric_altitude', field: 'barometricAltitude', shape: 'series', unit: 'm', range: [-1000, 10_000], category: 'activity', extent: 'instant',
    code: code([own('barometric-altitude')], 'm', 'm', 'activity', 'Barometric altitude (no LOINC or MDC code: vitalflow code system)'),
  },
  // value: the SleepStage number (1..4); exported as that stage's duration (codes.ts SLEEP_STAGES)
  sleep_stage: { proto: 'sleep', field: 'sleep', shape: 'epochs', unit: '1', range: [1, 4], category: 'sleep', extent: 'interval', code: null },
  battery: { proto: 'battery_percent', field: 'batteryPercent', shape: 'scalar', unit: '%', range: BATTERY_RANGE, category: 'device_diagnostics', extent: 'instant', code: BATTERY },
} as const satisfies Record<string, BraceletMeasure>

/** Metric names as stored in vital_samples.metric. */
export type Metric = keyof typeof BRACELET
/** Metrics the bracelet sends as a Series. */
export type SeriesMetric = { [M in Metric]: (typeof BRACELET)[M]['shape'] extends 'series' ? M : never }[Metric]
/** Their fields on the decoded BraceletBatch. */
export type BraceletSeriesField = (typeof BRACELET)[SeriesMetric]['field']

export const METRICS = Object.keys(BRACELET) as Metric[]

/** The Series metrics, in table order (the order decode checks them and rows numbers them). */
export const BRACELET_SERIES: ReadonlyArray<{ metric: SeriesMetric } & (typeof BRACELET)[SeriesMetric]> =
  METRICS.flatMap((metric) => BRACELET[metric].shape === 'series' ? [{ metric: metric as SeriesMetric, ...(BRACELET[metric as SeriesMetric]) }] : [])

/**
 * BraceletBatch fields that are not values of their own: the window, and the
 * per-sample quality of heart_rate (stored in the quality column of its rows).
 */
export const BRACELET_FRAME_FIELDS = ['window_start_ms', 'window_ms', 'heart_rate_quality'] as const

/** Each metric's consent category (the policy's METRIC_CATEGORY is this, checked against its categories). */
export const BRACELET_CATEGORY = Object.fromEntries(METRICS.map((m) => [m, BRACELET[m].category])) as { readonly [M in Metric]: (typeof BRACELET)[M]['category'] }

/** The consent categories vital_samples rows carry, in table order. */
export const VITAL_CATEGORIES = [...new Set(METRICS.map((m) => BRACELET[m].category))]

/** Metrics a clinician or researcher may query: every one but the device's own diagnostics. */
export type QueryableMetric = { [M in Metric]: (typeof BRACELET)[M]['category'] extends 'device_diagnostics' ? never : M }[Metric]
export const QUERYABLE_METRICS = METRICS.filter((m) => BRACELET[m].category !== 'device_diagnostics') as [QueryableMetric, ...QueryableMetric[]]
