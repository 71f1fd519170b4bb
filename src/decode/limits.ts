import { RANGES, type RangedField } from '../catalogue/index.ts'

/**
 * Plausible ranges per measurement, in the unit of the proto field, from the
 * catalogue (src/catalogue/). A value outside its range means a broken or
 * hostile sender, not a patient in trouble: physiologically extreme but real
 * values stay inside these bounds.
 */
export { RANGES }
export type { RangedField }

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
