/** TypeScript shapes of the decoded protobuf messages in proto/ (as protobufjs yields them). */
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

export interface BraceletBatch {
  windowStartMs: number
  windowMs: number
  heartRate?: Series | null
  heartRateQuality: number[]
  hrvRmssd?: Series | null
  spo2?: Series | null
  respirationRate?: Series | null
  skinTemperature?: Series | null
  steps?: Series | null
  activeEnergy?: Series | null
  sleep: SleepEpoch[]
  batteryPercent: number
}

export interface SpotMeasurement {
  measuredAtMs: number
  meterModel: string
  systolic?: number | null
  diastolic?: number | null
  pulse?: number | null
  spo2?: number | null
  temperature?: number | null
  glucose?: number | null
  weight?: number | null
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
