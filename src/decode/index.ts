export { decodeEnvelope, decodePayload } from './decode.ts'
export { encodeEnvelope, parseEnvelope, MAX_SEQ } from './envelope.ts'
export type { EnvelopeFields } from './envelope.ts'
export { parseTopic, telemetryTopic } from './topic.ts'
export type { TelemetryTopic } from './topic.ts'
export { DecodeReason } from './errors.ts'
export type { DecodeResult } from './errors.ts'
export { RANGES, MAX_ENVELOPE_BYTES, MAX_CLOCK_AHEAD_MS, MIN_TIME_MS } from './limits.ts'
export { EnvelopeType, BraceletBatchType, SpotMeasurementType, AlarmEventType, DeviceStatusType } from './schema.ts'
export { STREAMS, AlarmKind, SleepStage } from './messages.ts'
export type {
  Stream, Envelope, Series, SleepEpoch, BraceletBatch, SpotMeasurement, AlarmEvent, Location, DeviceStatus, Payload, PayloadByStream,
} from './messages.ts'
