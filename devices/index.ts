import type { PayloadByStream, Series, Stream } from '../src/decode/index.ts'

export { DeviceSealer, encodePayload } from './envelope.ts'
export type { DeviceCredentials } from './envelope.ts'
export { createRng } from './rng.ts'
export type { Rng } from './rng.ts'
export { createBraceletModel } from './corsano.ts'
export type { BraceletModel, BraceletModelOptions } from './corsano.ts'
export { createSpotModel } from './cvitals.ts'
export type { SpotModel } from './cvitals.ts'
export { createAlarmModel } from './calarm.ts'
export type { AlarmModel } from './calarm.ts'
export { createStatusModel } from './status.ts'
export type { StatusModel } from './status.ts'

/** Storage rows one message produces when every category it carries is allowed. */
export function expectedRows<S extends Stream> (stream: S, msg: PayloadByStream[S]): number {
  if (stream !== 'vitals') return 1
  const b = msg as PayloadByStream['vitals']
  const series: Array<Series | null | undefined> = [b.heartRate, b.hrvRmssd, b.spo2, b.respirationRate, b.skinTemperature, b.steps, b.activeEnergy]
  return series.reduce((n, s) => n + (s?.values.length ?? 0), 0) + b.sleep.length + 1 // + battery
}
