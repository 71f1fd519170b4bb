/**
 * Loads the .proto files in proto/ once, with 64-bit integers decoded as plain
 * numbers (timestamps in ms stay below 2^53; the decoder rejects anything
 * larger rather than lose precision). The envelope, whose uint64 seq uses the
 * whole range, is read and written by hand in envelope.ts; EnvelopeType stays
 * for tests that build hostile frames.
 */
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'

// Without Long, protobufjs reads (u)int64 as JS numbers: no Long objects on the hot path.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long
protobuf.configure()

const files = ['envelope.proto', 'corsano.proto', 'cvitals.proto', 'calarm.proto', 'status.proto']
const root = protobuf.loadSync(files.map((f) => fileURLToPath(new URL(`../../proto/${f}`, import.meta.url))))

export const EnvelopeType = root.lookupType('vitalflow.v1.Envelope')
export const BraceletBatchType = root.lookupType('vitalflow.v1.BraceletBatch')
export const SpotMeasurementType = root.lookupType('vitalflow.v1.SpotMeasurement')
export const AlarmEventType = root.lookupType('vitalflow.v1.AlarmEvent')
export const DeviceStatusType = root.lookupType('vitalflow.v1.DeviceStatus')
export const SleepStageEnum = root.lookupEnum('vitalflow.v1.SleepStage')
export const AlarmKindEnum = root.lookupEnum('vitalflow.v1.AlarmKind')
