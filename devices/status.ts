/** Device status model: stable identity per device, battery, last sync, occasional diagnostic lines (no personal data). */
import type { DeviceStatus } from '../src/decode/index.ts'
import { createRng } from './rng.ts'

export interface StatusModel { next: (reportedAtMs: number) => DeviceStatus }

const MODELS = { bracelet: ['Corsano CardioWatch 287-2', '3.1.'], cvitals: ['cVitals hub', '1.8.'], calarm: ['cAlarm 3', '2.4.'], gateway: ['Corsano gateway app', '5.2.'], responder: ['vitalflow responder app', '1.0.'] } as const
const DIAGNOSTICS = ['ble reconnect after 3 retries', 'ppg sensor recalibrated', 'sync backlog flushed', 'watchdog reset', 'flash wear 12%']

export function createStatusModel (seed: number, family: keyof typeof MODELS): StatusModel {
  const rng = createRng(seed ^ 0x5bd1e995)
  const [model, fw] = MODELS[family]
  const serial = `${family.slice(0, 3).toUpperCase()}-${rng.int(100000, 999999)}`
  const firmware = `${fw}${rng.int(0, 9)}`
  let battery = rng.uniform(40, 100)
  return {
    next (t) {
      battery = battery < 10 ? 100 : battery - rng.uniform(0, 2)
      return {
        reportedAtMs: t,
        model,
        firmware,
        serialNumber: serial,
        batteryPercent: Math.round(battery),
        lastSyncMs: t - rng.int(1_000, 300_000),
        diagnostics: rng.chance(0.1) ? [DIAGNOSTICS[rng.int(0, DIAGNOSTICS.length - 1)]!] : [],
      }
    },
  }
}
