/**
 * The pure parts of the clinician side: the patient list's rows from the overview query's rows
 * (src/api/overview.ts), a patient's devices over time from the registry's bindings, and the alarm
 * stream's Last-Event-ID parser (property-based).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseLastEventId } from '../src/api/alarm-stream.ts'
import { buildOverview, devicesOverTime } from '../src/api/overview.ts'
import type { OverviewRow } from '../src/api/queries.ts'
import type { DeviceRecord } from '../src/registry/index.ts'

const device = (id: string, family: DeviceRecord['family'], bindings: Array<[number, string | null]>): DeviceRecord => ({
  tenant: 't', device: id, family, patient: bindings.at(-1)![1], bindings: bindings.map(([fromMs, patient]) => ({ fromMs, patient })), gateway: null, secretHash: '', keys: new Map(),
} as unknown as DeviceRecord)
const v = (key: string, name: string, value: number, at: number, dev = '', seen = 0): OverviewRow => ({ src: 'v', key, name, value, at, device: dev, seen })

describe('patient list rows', () => {
  it('one row per given patient, in order; latest vitals, open alarms; a device\'s battery is its newest (status or bracelet batch); only devices bound now', () => {
    const devices = [device('b1', 'bracelet', [[0, 'p1']]), device('k1', 'cvitals', [[0, 'p2'], [500, 'p1']]), device('b2', 'bracelet', [[0, 'p2'], [900, 'p3']])]
    const rows: OverviewRow[] = [
      v('p1', 'heart_rate', 61.599998474121094, 1000), v('p1', 'battery', 40, 990, 'b1', 1005),
      { src: 'd', key: 'b1', name: '', value: 55, at: 0, device: 'b1', seen: 1001 }, // older than the batch's battery
      { src: 'd', key: 'k1', name: '', value: 80, at: 0, device: 'k1', seen: 700 },
      { src: 'a', key: 'p2', name: '', value: 2, at: 1200, device: '', seen: 0 },
      v('p-hidden', 'spo2', 90, 1000), // not in the list given (restricted or unknown): not shown
    ]
    expect(buildOverview(['p1', 'p2', 'p3'], devices, rows)).toEqual([
      { patient: 'p1', vitals: { heart_rate: { value: 61.6, at: 1000 } }, devices: [{ device: 'b1', family: 'bracelet', battery: 40, lastSeenAt: 1005 }, { device: 'k1', family: 'cvitals', battery: 80, lastSeenAt: 700 }], openAlarms: 0 },
      { patient: 'p2', vitals: {}, devices: [], openAlarms: 2 },
      { patient: 'p3', vitals: {}, devices: [{ device: 'b2', family: 'bracelet', battery: null, lastSeenAt: null }], openAlarms: 0 },
    ])
  })

  it('devices over time: every interval a device was bound to the patient, newest first', () => {
    const devices = [device('k1', 'cvitals', [[0, 'p2'], [500, 'p1'], [800, 'p2'], [900, 'p1']]), device('b1', 'bracelet', [[0, 'p1']])]
    expect(devicesOverTime('p1', devices)).toEqual([
      { device: 'k1', family: 'cvitals', from: 900, to: null }, { device: 'k1', family: 'cvitals', from: 500, to: 800 }, { device: 'b1', family: 'bracelet', from: 0, to: null },
    ])
    expect(devicesOverTime('p9', devices)).toEqual([])
  })
})

describe('Last-Event-ID', () => {
  it('is a time in ms written by the stream, or ignored', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 999_999_999_999_999 }), (n) => { expect(parseLastEventId(String(n))).toBe(n) }))
    fc.assert(fc.property(fc.string(), (s) => {
      const r = parseLastEventId(s)
      if (r !== null) expect(/^[0-9]{1,15}$/.test(s) && r === Number(s)).toBe(true)
    }))
    for (const bad of [undefined, '', '-1', '1e3', '12 ', '0x10', '1234567890123456', '1.5']) expect(parseLastEventId(bad)).toBeNull()
    expect(parseLastEventId(['17', '18'])).toBe(17)
  })
})
