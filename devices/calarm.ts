/** cAlarm model: periodic heartbeats, rare button presses and falls (with location), low-battery warnings. */
import { AlarmKind, type AlarmEvent } from '../src/decode/index.ts'
import { createRng } from './rng.ts'

export interface AlarmModel { next: (occurredAtMs: number) => AlarmEvent }

export function createAlarmModel (seed: number, opts: { pressProbability?: number; fallProbability?: number } = {}): AlarmModel {
  const rng = createRng(seed)
  const press = opts.pressProbability ?? 0.01
  const fall = opts.fallProbability ?? 0.01
  // a home somewhere in the Netherlands
  const home = { latitude: rng.uniform(51.5, 53.2), longitude: rng.uniform(4.5, 6.8) }
  let battery = rng.uniform(30, 100)
  return {
    next (t) {
      battery -= 0.05
      if (battery < 5) battery = 100
      const r = rng.next()
      const kind = r < press ? AlarmKind.BUTTON_PRESS : r < press + fall ? AlarmKind.FALL_DETECTED : battery < 15 ? AlarmKind.LOW_BATTERY : AlarmKind.HEARTBEAT
      const located = kind === AlarmKind.BUTTON_PRESS || kind === AlarmKind.FALL_DETECTED
      return {
        occurredAtMs: t,
        kind,
        batteryPercent: Math.round(battery),
        location: located
          ? { latitude: home.latitude + rng.normal(0, 0.0005), longitude: home.longitude + rng.normal(0, 0.0005), accuracyM: Math.round(rng.uniform(5, 50)) }
          : null,
      }
    },
  }
}
