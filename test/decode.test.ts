import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  AlarmEventType, BraceletBatchType, DeviceStatusType, EnvelopeType, SpotMeasurementType, decodeEnvelope, decodePayload, parseTopic,
  type BraceletBatch, type Stream,
} from '../src/decode/index.ts'
import { encodePayload } from '../devices/index.ts'

const NOW = Date.UTC(2026, 10, 22, 12)
const REASONS = new Set(['ING_ERR_ENVELOPE', 'ING_ERR_DECODE', 'ING_ERR_RANGE'])
const STREAMS: Stream[] = ['vitals', 'spot', 'alarm', 'status']

function batch (over: Partial<BraceletBatch> = {}): BraceletBatch {
  return {
    windowStartMs: NOW - 120_000, windowMs: 60_000,
    heartRate: { offsetMs: 0, intervalMs: 1000, values: [70, 71, 72] }, heartRateQuality: [4, 4, 3],
    spo2: { offsetMs: 0, intervalMs: 60_000, values: [97] }, sleep: [], batteryPercent: 50, ...over,
  }
}

const validFrames: Array<[Stream, Uint8Array]> = [
  ['vitals', encodePayload('vitals', batch())],
  ['spot', encodePayload('spot', { measuredAtMs: NOW, meterModel: 'm', systolic: 120, diastolic: 80 })],
  ['alarm', encodePayload('alarm', { occurredAtMs: NOW, kind: 2, batteryPercent: 50, location: { latitude: 52, longitude: 5, accuracyM: 10 } })],
  ['status', encodePayload('status', { reportedAtMs: NOW, model: 'x', firmware: '1', serialNumber: 's', batteryPercent: 3, lastSyncMs: 0, diagnostics: ['a'] })],
]
const envelope = EnvelopeType.encode({ version: 1, deviceId: 'dev-1', seq: 42, keyId: 1, nonce: new Uint8Array(24), ciphertext: new Uint8Array(40) }).finish()

/** Random mutations of a valid encoding: flips, insertions, deletions, truncation. */
const mutated = (base: Uint8Array) => fc.array(fc.tuple(fc.constantFrom('flip', 'insert', 'delete', 'truncate'), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })
  .map((muts) => {
    let b = Array.from(base)
    for (const [kind, at, v] of muts) {
      const i = b.length === 0 ? 0 : at % b.length
      if (kind === 'flip') b[i] = (b[i] ?? 0) ^ (v | 1)
      else if (kind === 'insert') b.splice(i, 0, v)
      else if (kind === 'delete') b.splice(i, 1)
      else b = b.slice(0, i)
    }
    return Uint8Array.from(b)
  })

function checkRefusal (r: { ok: boolean; reason?: string; detail?: string }): void {
  if (r.ok) return
  expect(REASONS.has(r.reason!)).toBe(true)
  expect(r.detail!.length).toBeGreaterThan(0)
}

describe('decoding hostile bytes', () => {
  it('never throws on random bytes; every refusal carries a reason code', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.constantFrom(...STREAMS), (bytes, stream) => {
      checkRefusal(decodeEnvelope(bytes))
      checkRefusal(decodePayload(stream, bytes, NOW))
    }), { numRuns: 3000 })
  })

  it('never throws on mutated valid envelopes and payloads', () => {
    fc.assert(fc.property(mutated(envelope), (bytes) => { checkRefusal(decodeEnvelope(bytes)) }), { numRuns: 2000 })
    for (const [stream, frame] of validFrames) {
      expect(decodePayload(stream, frame, NOW).ok).toBe(true)
      fc.assert(fc.property(mutated(frame), (bytes) => { checkRefusal(decodePayload(stream, bytes, NOW)) }), { numRuns: 1000 })
    }
  })

  it('refuses envelopes with a wrong version, nonce or a too-short ciphertext', () => {
    const e = (over: object) => EnvelopeType.encode({ version: 1, deviceId: 'd', seq: 1, keyId: 1, nonce: new Uint8Array(24), ciphertext: new Uint8Array(16), ...over }).finish()
    expect(decodeEnvelope(e({})).ok).toBe(true)
    for (const over of [{ version: 2 }, { nonce: new Uint8Array(12) }, { ciphertext: new Uint8Array(15) }]) {
      expect(decodeEnvelope(e(over))).toMatchObject({ ok: false, reason: 'ING_ERR_ENVELOPE' })
    }
    expect(decodeEnvelope(new Uint8Array(0))).toMatchObject({ ok: false, reason: 'ING_ERR_ENVELOPE' })
  })

  it('refuses values outside their plausible range', () => {
    const range = (b: BraceletBatch) => decodePayload('vitals', encodePayload('vitals', b), NOW)
    expect(range(batch()).ok).toBe(true)
    for (const bad of [
      batch({ heartRate: { offsetMs: 0, intervalMs: 1000, values: [70, 400, 72] } }),
      batch({ heartRate: { offsetMs: 0, intervalMs: 1000, values: [70, Number.NaN, 72] } }),
      batch({ spo2: { offsetMs: 0, intervalMs: 60_000, values: [101] } }),
      batch({ heartRateQuality: [4, 5, 4] }),
      batch({ heartRateQuality: [4] }),
      batch({ heartRate: { offsetMs: 0, intervalMs: 0, values: [70, 71] } }),
      batch({ heartRate: { offsetMs: 59_000, intervalMs: 1000, values: [70, 71] } }),
      batch({ windowStartMs: Date.UTC(2010, 0, 1) }),
      batch({ windowStartMs: NOW + 2 * 86_400_000 }),
      batch({ sleep: [{ offsetMs: 0, durationMs: 30_000, stage: 9 }] }),
      batch({ batteryPercent: 101 }),
    ]) expect(range(bad)).toMatchObject({ ok: false, reason: 'ING_ERR_RANGE' })
    expect(decodePayload('spot', encodePayload('spot', { measuredAtMs: NOW, meterModel: 'm' }), NOW)).toMatchObject({ ok: false, reason: 'ING_ERR_RANGE' })
    expect(decodePayload('alarm', encodePayload('alarm', { occurredAtMs: NOW, kind: 9, batteryPercent: 1 }), NOW)).toMatchObject({ ok: false, reason: 'ING_ERR_RANGE' })
    expect(decodePayload('alarm', encodePayload('alarm', { occurredAtMs: NOW, kind: 1, batteryPercent: 1, location: { latitude: 91, longitude: 0, accuracyM: 1 } }), NOW))
      .toMatchObject({ ok: false, reason: 'ING_ERR_RANGE' })
    // the schemas the tests encode with are the ones the decoder reads
    expect([BraceletBatchType, SpotMeasurementType, AlarmEventType, DeviceStatusType].map((t) => t.fullName))
      .toEqual(['.vitalflow.v1.BraceletBatch', '.vitalflow.v1.SpotMeasurement', '.vitalflow.v1.AlarmEvent', '.vitalflow.v1.DeviceStatus'])
  })
})

describe('topic parser', () => {
  const model = (t: string) => {
    const m = /^v1\/([A-Za-z0-9_-]{1,64})\/([A-Za-z0-9_-]{1,64})\/(vitals|spot|alarm|status)$/.exec(t)
    return m === null ? null : { tenant: m[1], device: m[2], stream: m[3] }
  }
  const segment = fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), fc.constantFrom('', '+', '#', 'vitals', 'spot', 'alarm', 'status', 'v1', 'é', 'a b', 'x'.repeat(65)), fc.string({ maxLength: 5 }),
  )
  it('accepts exactly v1/{tenant}/{device}/{stream}, as an independent regex does', () => {
    fc.assert(fc.property(fc.array(segment, { minLength: 0, maxLength: 6 }), fc.boolean(), (segs, prefix) => {
      const topic = (prefix ? ['v1', ...segs] : segs).join('/')
      expect(parseTopic(topic)).toEqual(model(topic))
    }), { numRuns: 5000 })
  })
})
