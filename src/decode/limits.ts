/**
 * Plausible ranges per measurement, in the unit of the proto field. A value
 * outside its range means a broken or hostile sender, not a patient in
 * trouble: physiologically extreme but real values stay inside these bounds.
 */
export const RANGES = {
  heart_rate: [0, 300],
  hrv_rmssd: [0, 2000],
  spo2: [0, 100],
  respiration_rate: [0, 120],
  skin_temperature: [0, 50],
  steps: [0, 10_000],
  active_energy: [0, 10_000],
  battery: [0, 100],
  systolic: [30, 320],
  diastolic: [10, 250],
  pulse: [10, 350],
  temperature: [20, 46],
  glucose: [0.1, 60],
  weight: [0.3, 650],
  latitude: [-90, 90],
  longitude: [-180, 180],
  accuracy_m: [0, 1_000_000],
} as const satisfies Record<string, readonly [number, number]>
export type RangedField = keyof typeof RANGES

/** Earliest device timestamp accepted (2015-01-01T00:00:00Z). */
export const MIN_TIME_MS = 1_420_070_400_000
/** How far a device clock may run ahead of ours. */
export const MAX_CLOCK_AHEAD_MS = 24 * 3600_000
export const MAX_WINDOW_MS = 3600_000
export const MAX_SAMPLES_PER_MESSAGE = 20_000
export const MAX_TEXT = 64
export const MAX_DIAGNOSTICS = 32
export const MAX_DIAGNOSTIC_CHARS = 256
export const MAX_ENVELOPE_BYTES = 256 * 1024

export function inRange (field: RangedField, v: number): boolean {
  const r = RANGES[field]
  return v >= r[0] && v <= r[1] // false for NaN
}
