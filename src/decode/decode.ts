/**
 * Envelope and payload decoding with validation. Never throws on input: a
 * malformed frame comes back as a typed refusal with a reason code and a
 * detail that never quotes the input.
 */
import { AlarmEventType, BraceletBatchType, DeviceStatusType, SpotMeasurementType } from './schema.ts'
import { parseEnvelope } from './envelope.ts'
import { DecodeReason, type DecodeResult } from './errors.ts'
import {
  MAX_CLOCK_AHEAD_MS, MAX_DIAGNOSTIC_CHARS, MAX_DIAGNOSTICS, MAX_ENVELOPE_BYTES, MAX_SAMPLES_PER_MESSAGE, MAX_TEXT,
  MAX_WINDOW_MS, MIN_TIME_MS, inRange, type RangedField,
} from './limits.ts'
import type { AlarmEvent, BraceletBatch, DeviceStatus, Envelope, Payload, PayloadByStream, Series, SpotMeasurement, Stream } from './messages.ts'
import { AlarmKind } from './messages.ts'
import { ALARM_LOCATION, BRACELET, BRACELET_SERIES, SPOT, SPOT_COLUMNS } from '../catalogue/index.ts'

const NONCE_BYTES = 24
const TAG_BYTES = 16

function fail<T> (reason: DecodeReason, detail: string): DecodeResult<T> {
  return { ok: false, reason, detail }
}

function protoDecode<T> (type: typeof BraceletBatchType, buf: Uint8Array): T | string {
  try {
    return type.decode(buf) as unknown as T
  } catch (err) {
    // protobufjs messages name offsets and wire types, never field values
    return `${type.name}: ${(err as Error).message}`.slice(0, 200)
  }
}

export function decodeEnvelope (buf: Uint8Array): DecodeResult<Envelope> {
  if (buf.length === 0) return fail(DecodeReason.envelope, 'empty payload')
  if (buf.length > MAX_ENVELOPE_BYTES) return fail(DecodeReason.envelope, `envelope of ${buf.length} bytes exceeds ${MAX_ENVELOPE_BYTES}`)
  const env = parseEnvelope(buf)
  if (typeof env === 'string') return fail(DecodeReason.envelope, `Envelope: ${env}`)
  if (env.version !== 1) return fail(DecodeReason.envelope, `unsupported envelope version ${env.version}`)
  if (env.nonce.length !== NONCE_BYTES) return fail(DecodeReason.envelope, `nonce must be ${NONCE_BYTES} bytes`)
  if (env.ciphertext.length < TAG_BYTES) return fail(DecodeReason.envelope, 'ciphertext shorter than its tag')
  return { ok: true, value: env }
}

/** Decodes one message type and checks its ranges: the decode step of every stream. */
function decodeChecked<T> (type: typeof BraceletBatchType, buf: Uint8Array, nowMs: number, check: (m: T, nowMs: number) => string | null): DecodeResult<T> {
  const m = protoDecode<T>(type, buf)
  if (typeof m === 'string') return fail(DecodeReason.decode, m)
  const bad = check(m, nowMs)
  return bad === null ? { ok: true, value: m } : fail(DecodeReason.range, bad)
}

/** The decoded message under its stream. */
function tagged<S extends Stream> (stream: S, r: DecodeResult<PayloadByStream[S]>): DecodeResult<Payload> {
  // a stream and its own message type: the pair is one member of the Payload union
  return r.ok ? { ok: true, value: { stream, msg: r.value } as Payload } : r
}

export function decodePayload (stream: Stream, buf: Uint8Array, nowMs: number): DecodeResult<Payload> {
  switch (stream) {
    case 'vitals': return tagged(stream, decodeChecked<BraceletBatch>(BraceletBatchType, buf, nowMs, checkBracelet))
    case 'spot': return tagged(stream, decodeChecked<SpotMeasurement>(SpotMeasurementType, buf, nowMs, checkSpot))
    case 'alarm': return tagged(stream, decodeChecked<AlarmEvent>(AlarmEventType, buf, nowMs, checkAlarm))
    case 'status': return tagged(stream, decodeChecked<DeviceStatus>(DeviceStatusType, buf, nowMs, checkStatus))
  }
}

function checkTime (name: string, t: number, nowMs: number): string | null {
  if (!Number.isSafeInteger(t) || t < MIN_TIME_MS || t > nowMs + MAX_CLOCK_AHEAD_MS) return `${name} outside the accepted time range`
  return null
}

function checkValue (field: RangedField, v: number): string | null {
  return inRange(field, v) ? null : `${field} outside its plausible range`
}

/** [decoded field, proto field] of every Series the catalogue lists, in its order. */
const SERIES = BRACELET_SERIES.map((s) => [s.field, s.proto] as const)
const STAGES = BRACELET.sleep_stage.range

function checkBracelet (m: BraceletBatch, nowMs: number): string | null {
  const t = checkTime('window_start_ms', m.windowStartMs, nowMs)
  if (t !== null) return t
  if (m.windowMs <= 0 || m.windowMs > MAX_WINDOW_MS) return 'window_ms out of range'
  let samples = m.sleep.length
  for (const [key, field] of SERIES) {
    const s: Series | null | undefined = m[key]
    if (s == null || s.values.length === 0) continue
    if (s.intervalMs <= 0) return `${field} interval_ms must be positive`
    if (s.offsetMs + (s.values.length - 1) * s.intervalMs > m.windowMs) return `${field} runs past the window`
    for (const v of s.values) if (!inRange(field, v)) return `${field} outside its plausible range`
    samples += s.values.length
  }
  if (samples > MAX_SAMPLES_PER_MESSAGE) return `more than ${MAX_SAMPLES_PER_MESSAGE} samples in one batch`
  const hr = m.heartRate?.values.length ?? 0
  if (m.heartRateQuality.length !== 0 && m.heartRateQuality.length !== hr) return 'heart_rate_quality does not match heart_rate'
  for (const q of m.heartRateQuality) if (q > 4) return 'heart_rate_quality outside 0..4'
  for (const e of m.sleep) {
    if (e.stage < STAGES[0] || e.stage > STAGES[1]) return 'sleep stage unknown'
    if (e.durationMs <= 0 || e.offsetMs + e.durationMs > m.windowMs) return 'sleep epoch outside the window'
  }
  return checkValue('battery', m.batteryPercent)
}

/** [decoded field, proto field] of every spot value the catalogue lists, in table order. */
const SPOT_FIELDS = SPOT_COLUMNS.map((c) => [SPOT[c].field, SPOT[c].proto] as const)
const LOCATION = Object.values(ALARM_LOCATION).map((l) => [l.field, l.proto] as const)

function checkSpot (m: SpotMeasurement, nowMs: number): string | null {
  const t = checkTime('measured_at_ms', m.measuredAtMs, nowMs)
  if (t !== null) return t
  if (m.meterModel.length > MAX_TEXT) return 'meter_model too long'
  let present = 0
  for (const [key, field] of SPOT_FIELDS) {
    const v = m[key]
    if (v == null) continue
    present++
    const bad = checkValue(field, v)
    if (bad !== null) return bad
  }
  return present === 0 ? 'spot measurement without any value' : null
}

function checkAlarm (m: AlarmEvent, nowMs: number): string | null {
  const t = checkTime('occurred_at_ms', m.occurredAtMs, nowMs)
  if (t !== null) return t
  if (m.kind < AlarmKind.BUTTON_PRESS || m.kind > AlarmKind.HEARTBEAT) return 'alarm kind unknown'
  const b = checkValue('battery', m.batteryPercent)
  if (b !== null) return b
  const loc = m.location
  if (loc == null) return null
  for (const [key, field] of LOCATION) {
    const bad = checkValue(field, loc[key])
    if (bad !== null) return bad
  }
  return null
}

function checkStatus (m: DeviceStatus, nowMs: number): string | null {
  const t = checkTime('reported_at_ms', m.reportedAtMs, nowMs)
  if (t !== null) return t
  if (m.lastSyncMs !== 0) {
    const s = checkTime('last_sync_ms', m.lastSyncMs, nowMs)
    if (s !== null) return s
  }
  if (m.model.length > MAX_TEXT || m.firmware.length > MAX_TEXT || m.serialNumber.length > MAX_TEXT) return 'status text field too long'
  if (m.diagnostics.length > MAX_DIAGNOSTICS) return `more than ${MAX_DIAGNOSTICS} diagnostic lines`
  for (const d of m.diagnostics) if (d.length > MAX_DIAGNOSTIC_CHARS) return 'diagnostic line too long'
  return checkValue('battery', m.batteryPercent)
}
