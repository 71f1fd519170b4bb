/** cVitals kit model: each measurement comes from one of the kit's BLE meters. */
import type { SpotMeasurement } from '../src/decode/index.ts'
import { createRng, round1 } from './rng.ts'

export interface SpotModel { next: (measuredAtMs: number) => SpotMeasurement }

export function createSpotModel (seed: number): SpotModel {
  const rng = createRng(seed)
  const systolic = rng.uniform(110, 150)
  const diastolic = rng.uniform(65, 90)
  const pulse = rng.uniform(58, 85)
  let weight = rng.uniform(55, 110)
  const meters = [
    (t: number): SpotMeasurement => ({ measuredAtMs: t, meterModel: 'A&D UA-651BLE', systolic: Math.round(rng.normal(systolic, 6)), diastolic: Math.round(rng.normal(diastolic, 4)), pulse: Math.round(rng.normal(pulse, 4)) }),
    (t: number): SpotMeasurement => ({ measuredAtMs: t, meterModel: 'Nonin 3230', spo2: Math.round(rng.uniform(94, 99)), pulse: Math.round(rng.normal(pulse, 4)) }),
    (t: number): SpotMeasurement => ({ measuredAtMs: t, meterModel: 'Braun ThermoScan 7', temperature: round1(rng.normal(36.8, 0.3)) }),
    (t: number): SpotMeasurement => ({ measuredAtMs: t, meterModel: 'Contour Next One', glucose: round1(rng.uniform(4, 10)) }),
    (t: number): SpotMeasurement => { weight += rng.normal(0, 0.2); return { measuredAtMs: t, meterModel: 'A&D UC-352BLE', weight: round1(weight) } },
  ]
  return { next: (t) => meters[rng.int(0, meters.length - 1)]!(t) }
}
