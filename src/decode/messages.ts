/** TypeScript shapes of the decoded protobuf messages in proto/ (as protobufjs yields them). */
import type { BraceletSeriesField, SpotField } from '../catalogue/index.ts'

export const STREAMS = ['vitals', 'spot', 'alarm', 'status'] as const
export type Stream = (typeof STREAMS)[number]

export interface Envelope {
  version: number
  deviceId: string
  /** uint64, exact: 0 .. 2^64 - 1. */
  seq: bigint
  keyId: number
  nonce: Uint8Array
  ciphertext: Uint8Array
}

export interface Series {
  offsetMs: number
  intervalMs: number
  values: number[]
}

export const SleepStage = { UNSPECIFIED: 0, AWAKE: 1, LIGHT: 2, DEEP: 3, REM: 4 } as const
export interface SleepEpoch { offsetMs: number; durationMs: number; stage: number }

/** The bracelet's Series fields, one per series metric of the catalogue (heartRate, spo2, ...). */
export type BraceletSeries = { [K in BraceletSeriesField]?: Series | null }

export interface BraceletBatch extends BraceletSeries {
  windowStartMs: number
  windowMs: number
  heartRateQuality: number[]
  sleep: SleepEpoch[]
  batteryPercent: number
}

/** The spot values, one per column of the catalogue's SPOT table (systolic, ..., weight). */
export type SpotValues = { [K in SpotField]?: number | null }

export interface SpotMeasurement extends SpotValues {
  measuredAtMs: number
  meterModel: string
}

export const AlarmKind = { UNSPECIFIED: 0, BUTTON_PRESS: 1, FALL_DETECTED: 2, LOW_BATTERY: 3, HEARTBEAT: 4 } as const
export interface Location { latitude: number; longitude: number; accuracyM: number }
export interface AlarmEvent {
  occurredAtMs: number
  kind: number
  batteryPercent: number
  location?: Location | null
}

export interface DeviceStatus {
  reportedAtMs: number
  model: string
  firmware: string
  serialNumber: string
  batteryPercent: number
  lastSyncMs: number
  diagnostics: string[]
}

export interface PayloadByStream {
  vitals: BraceletBatch
  spot: SpotMeasurement
  alarm: AlarmEvent
  status: DeviceStatus
}
export type Payload = { stream: 'vitals'; msg: BraceletBatch } | { stream: 'spot'; msg: SpotMeasurement } |
  { stream: 'alarm'; msg: AlarmEvent } | { stream: 'status'; msg: DeviceStatus }
