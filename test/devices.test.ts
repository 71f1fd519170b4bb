import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodePayload } from '../src/decode/index.ts'
import { createAlarmModel, createBraceletModel, createSpotModel, createStatusModel, encodePayload, expectedRows } from '../devices/index.ts'

const NOW = Date.UTC(2026, 10, 22, 12)
const DAY = 86_400_000

describe('device signal models', () => {
  it('every generated message survives protobuf and passes the ingest range checks', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 0, max: 14 * DAY }), (seed, back) => {
      const t = NOW - back
      const bracelet = createBraceletModel(seed)
      const spot = createSpotModel(seed)
      const alarm = createAlarmModel(seed, { pressProbability: 0.3, fallProbability: 0.3 })
      for (let i = 0; i < 5; i++) {
        const at = t + i * 60_000
        for (const [stream, msg] of [
          ['vitals', bracelet.nextBatch(at)], ['spot', spot.next(at)], ['alarm', alarm.next(at)], ['status', createStatusModel(seed, 'calarm').next(at)],
        ] as const) {
          const r = decodePayload(stream, encodePayload(stream, msg as never), NOW)
          expect(r.ok, `${stream}: ${r.ok ? '' : r.detail}`).toBe(true)
        }
      }
    }), { numRuns: 100 })
  })

  it('a bracelet window has 1 Hz heart rate and about 70 rows; sleep epochs only at night', () => {
    const m = createBraceletModel(1)
    const day = m.nextBatch(Date.UTC(2026, 10, 22, 14, 0))
    const night = m.nextBatch(Date.UTC(2026, 10, 23, 2, 0))
    expect(day.heartRate!.values).toHaveLength(60)
    expect(day.heartRateQuality).toHaveLength(60)
    expect(day.sleep).toHaveLength(0)
    expect(night.sleep).toHaveLength(2)
    expect(night.steps!.values.every((v) => v === 0)).toBe(true)
    for (const b of [day, night]) expect(expectedRows('vitals', b)).toBeGreaterThanOrEqual(65)
    expect(expectedRows('vitals', night)).toBeLessThanOrEqual(75)
  })

  it('is deterministic per seed and differs between seeds', () => {
    const a = createBraceletModel(42).nextBatch(NOW)
    expect(createBraceletModel(42).nextBatch(NOW)).toEqual(a)
    expect(createBraceletModel(43).nextBatch(NOW)).not.toEqual(a)
  })

  it('alarms carry a location only for presses and falls', () => {
    const m = createAlarmModel(5, { pressProbability: 0.2, fallProbability: 0.2 })
    const events = Array.from({ length: 200 }, (_, i) => m.next(NOW + i * 1000))
    expect(events.some((e) => e.kind === 1) && events.some((e) => e.kind === 2) && events.some((e) => e.kind === 4)).toBe(true)
    for (const e of events) expect(e.location != null).toBe(e.kind === 1 || e.kind === 2)
  })
})
