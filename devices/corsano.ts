/**
 * Corsano bracelet signal model: one batch per window with 1 Hz heart rate
 * (and its quality), HRV at 5-minute boundaries, SpO2, respiration rate, skin
 * temperature, steps, energy and barometric altitude per minute, sleep-stage
 * epochs at night, and a battery that drains and recharges. Time of day is taken in UTC.
 */
import { SleepStage, type BraceletBatch, type Series, type SleepEpoch } from '../src/decode/index.ts'
import { clamp, createRng, round1 } from './rng.ts'

const MIN = 60_000
const EPOCH = 30_000

function nightUtc (t: number): boolean {
  const h = new Date(t).getUTCHours()
  return h >= 23 || h < 7
}

/** Sleep stage by position in a ~90-minute cycle: light → deep → light → REM, waking briefly between cycles. */
function stageAt (t: number, cycleOffsetMin: number): number {
  const minutes = (t / MIN + cycleOffsetMin) % 90
  if (minutes < 2) return SleepStage.AWAKE
  if (minutes < 25) return SleepStage.LIGHT
  if (minutes < 50) return SleepStage.DEEP
  if (minutes < 70) return SleepStage.LIGHT
  return SleepStage.REM
}

export interface BraceletModel {
  nextBatch: (windowStartMs: number, windowMs?: number) => BraceletBatch
}

export interface BraceletModelOptions {
  /** Whether the wearer sleeps in the window starting at this time; by default 23:00–07:00 UTC. */
  asleep?: (windowStartMs: number) => boolean
}

export function createBraceletModel (seed: number, options: BraceletModelOptions = {}): BraceletModel {
  const asleepAt = options.asleep ?? nightUtc
  const rng = createRng(seed)
  const restingHr = rng.uniform(55, 80)
  const cycleOffset = rng.uniform(0, 90)
  let battery = rng.uniform(40, 100)
  let hr = restingHr
  // altitude has its own generator, so the other signals of a seed stay what they were before it existed
  const air = createRng(seed ^ 0x0a17)
  const home = air.uniform(-5, 120) // the Netherlands: a few metres below sea level to a hill
  let floor = 0 // metres above home: stairs while active, back home at rest
  let weather = air.normal(0, 15) // pressure systems shift barometric altitude by tens of metres
  return {
    nextBatch (windowStartMs, windowMs = MIN) {
      const asleep = asleepAt(windowStartMs)
      const activity = asleep ? 0 : rng.chance(0.15) ? rng.uniform(0.5, 1) : rng.uniform(0, 0.2)
      const target = restingHr * (asleep ? 0.88 : 1) + activity * 60
      const seconds = Math.floor(windowMs / 1000)
      const hrValues: number[] = []
      const quality: number[] = []
      for (let i = 0; i < seconds; i++) {
        hr += (target - hr) * 0.05 + rng.normal(0, 0.8)
        hrValues.push(round1(clamp(hr, 35, 200)))
        quality.push(activity > 0.5 && rng.chance(0.3) ? rng.int(0, 2) : rng.chance(0.9) ? 4 : 3)
      }
      const minutes = Math.max(1, Math.floor(windowMs / MIN))
      const perMinute = (f: () => number): Series => ({ offsetMs: 30_000 % windowMs, intervalMs: MIN, values: Array.from({ length: minutes }, f) })
      const spo2 = perMinute(() => round1(rng.chance(0.02) ? rng.uniform(88, 92) : rng.uniform(95, 99)))
      const respiration = perMinute(() => round1(asleep ? rng.uniform(11, 15) : rng.uniform(13, 20) + activity * 6))
      const skin = perMinute(() => round1(rng.uniform(asleep ? 33.5 : 31, asleep ? 35 : 34.5)))
      const steps: Series = { offsetMs: 0, intervalMs: MIN, values: Array.from({ length: minutes }, () => asleep ? 0 : Math.round(activity * rng.uniform(60, 120))) }
      const energy: Series = { offsetMs: 0, intervalMs: MIN, values: Array.from({ length: minutes }, () => round1(1.1 + activity * rng.uniform(3, 8))) }
      const altitude = perMinute(() => {
        floor = activity > 0.5 ? clamp(floor + air.normal(0, 3), 0, 30) : floor * 0.7
        weather = clamp(weather + air.normal(0, 0.2), -60, 60)
        return round1(home + floor + weather)
      })
      // HRV (RMSSD) at each 5-minute boundary inside the window
      const hrv: number[] = []
      const firstBoundary = Math.ceil(windowStartMs / (5 * MIN)) * 5 * MIN
      for (let t = firstBoundary; t < windowStartMs + windowMs; t += 5 * MIN) hrv.push(round1(clamp(rng.normal(asleep ? 55 : 38, 10), 20, 80)))
      const sleep: SleepEpoch[] = []
      if (asleep) {
        for (let off = 0; off + EPOCH <= windowMs; off += EPOCH) sleep.push({ offsetMs: off, durationMs: EPOCH, stage: stageAt(windowStartMs + off, cycleOffset) })
      }
      battery -= windowMs / (5 * 86_400_000) * 100 // about five days a charge
      if (battery < 8) battery = 100
      return {
        windowStartMs,
        windowMs,
        heartRate: { offsetMs: 0, intervalMs: 1000, values: hrValues },
        heartRateQuality: quality,
        hrvRmssd: hrv.length === 0 ? null : { offsetMs: firstBoundary - windowStartMs, intervalMs: 5 * MIN, values: hrv },
        spo2,
        respirationRate: respiration,
        skinTemperature: skin,
        steps,
        activeEnergy: energy,
        barometricAltitude: altitude,
        sleep,
        batteryPercent: Math.round(battery),
      }
    },
  }
}
