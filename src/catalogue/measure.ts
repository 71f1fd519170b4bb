/**
 * The shape of one catalogue entry: one value a device family sends, from its
 * .proto field to its clinical code. Every stage derives from these entries:
 * decode (plausible ranges), storage rows (which fields become rows, under
 * which consent category), the API (which metrics can be asked for), the export
 * (codes and units) and the device models' expectations.
 */
import type { Code } from './codes.ts'

/** instant: a value at ts; interval: a value over [ts, ts + duration_ms) (counts per interval, sleep epochs). */
export type Extent = 'instant' | 'interval'

/**
 * The consent categories a catalogue entry may name: the data categories of
 * src/consent/policy.ts that devices send (the policy's CATEGORIES add the logs
 * vitalflow itself keeps). policy.ts checks that every one is a policy category.
 */
export type MeasuredCategory = 'vitals' | 'sleep' | 'activity' | 'location' | 'spot_measurements' | 'alarm_events' | 'device_diagnostics'

export interface Measure {
  /** The field in the family's .proto message (snake_case). */
  proto: string
  /** The same field on the decoded message (protobufjs' camelCase). */
  field: string
  /** UCUM unit of the value as sent and stored. */
  unit: string
  /** Plausible range in that unit: outside it the sender is broken or hostile, and decode refuses the message. */
  range: readonly [number, number]
  /** The consent category the value is stored (or dropped) under. */
  category: MeasuredCategory
  extent: Extent
  /** How the export codes it; null where the code depends on the value (sleep: SLEEP_STAGES by stage). */
  code: Code | null
}

/** Plausible range of a device battery charge, %, whichever family reports it. */
export const BATTERY_RANGE = [0, 100] as const
