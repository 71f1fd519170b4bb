import { BRACELET_SERIES } from '../src/catalogue/index.ts'
import type { PayloadByStream, Stream } from '../src/decode/index.ts'

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
  // every Series the catalogue lists, one row per value; a row per sleep epoch; the battery
  return BRACELET_SERIES.reduce((n, s) => n + (b[s.field]?.values.length ?? 0), 0) + b.sleep.length + 1
}
