/**
 * The ingest hot path in process, no sockets: topic → envelope → replay →
 * decrypt → decode → consent → TSV rows, for a 60 s bracelet batch and for a
 * single alarm, side by side with the bare cost of decrypt + protobuf decode
 * of the same frames. Storage is replaced by a sink that accepts the rows (the
 * batcher and ClickHouse are measured end to end elsewhere).
 */
import { randomBytes } from 'node:crypto'
import { ConsentIndex } from '../src/consent/index.ts'
import { associatedData, open, prepareKey } from '../src/crypto/index.ts'
import { AlarmEventType, BraceletBatchType, decodeEnvelope, type Stream } from '../src/decode/index.ts'
import type { DeviceId, PatientId, TenantId } from '../src/ids.ts'
import { createIngest, createMetrics } from '../src/pipeline/index.ts'
import type { DeviceRecord } from '../src/registry/index.ts'
import type { StorageWriter } from '../src/storage/index.ts'
import { DeviceSealer, createAlarmModel, createBraceletModel, expectedRows } from '../devices/index.ts'
import { machine, measure, ratio } from './harness.ts'

const tenant = 'care-north' as TenantId
const device = 'brc-000123' as DeviceId
const patient = 'p-000123' as PatientId
const key = randomBytes(32)
const record: DeviceRecord = { tenant, device, family: 'bracelet', patient, bindings: [{ fromMs: 0, patient }], gateway: null, secretHash: '', keys: new Map([[1, { aead: prepareKey(key), notAfterMs: null }]]), revokedAtMs: null }
const consent = new ConsentIndex()
for (const category of ['vitals', 'sleep', 'activity', 'location'] as const) {
  consent.apply({ tenant, patient, purpose: 'care', category, action: 'grant', version: 1, recordedBy: 'bench', source: 'app', recordedAtMs: 0, validFromMs: 0 })
}
let sunk = 0
const sink: StorageWriter = { write: (_t, chunk, rows) => { sunk += rows + (chunk.length > 0 ? 0 : 1); return Promise.resolve() } }
const newIngest = (): ReturnType<typeof createIngest> => createIngest({ consent, storage: sink, metrics: createMetrics() })
const sender = { record, clientId: device, remoteAddress: '127.0.0.1' }
const sealer = new DeviceSealer({ tenant, device, keyId: 1, key })

// a pool of distinct frames: the replay window must accept each one, so sequence numbers keep rising
function frames (stream: Stream, make: (i: number) => unknown, n: number): Array<{ topic: string; frame: Buffer }> {
  return Array.from({ length: n }, (_, i) => { const s = sealer.seal(stream, make(i) as never); return { topic: s.topic, frame: Buffer.from(s.frame) } })
}
const now = Date.now()
const bracelet = createBraceletModel(7)
const batches = frames('vitals', (i) => bracelet.nextBatch(now - 3_600_000 + i * 60_000), 256)
const alarms = createAlarmModel(7)
const alarmFrames = frames('alarm', (i) => alarms.next(now - 3_600_000 + i * 1000), 256)

function bench (name: string, pool: Array<{ topic: string; frame: Buffer }>, stream: Stream, type: typeof BraceletBatchType): Record<string, unknown> {
  // the pool's sequence numbers repeat every 256 frames; a fresh ingest (fresh replay windows) per
  // cycle keeps every call on the full path instead of being refused as a replay
  let ingest = newIngest()
  let i = 0
  const full = measure(`${name}: ingest path`, () => {
    if ((i & 255) === 0) ingest = newIngest()
    const f = pool[i++ & 255]!
    if (ingest.ingest(sender, f.topic, f.frame).kind !== 'stored') throw new Error('frame refused')
  })
  let j = 0
  const bare = measure(`${name}: decrypt + decode only`, () => {
    const f = pool[j++ & 255]!
    const env = decodeEnvelope(f.frame)
    if (!env.ok) throw new Error('bad frame')
    const e = env.value
    const plain = open(record.keys.get(1)!.aead, e.nonce, e.ciphertext, associatedData(tenant, device, stream, e.seq, e.keyId))
    if (plain === null) throw new Error('does not open')
    type.decode(plain)
  })
  return { case: name, frameBytes: pool[0]!.frame.length, ingestOpsPerSec: full.opsPerSec, bareOpsPerSec: bare.opsPerSec, ingestOverBare: ratio(full, bare) }
}

const sample = bracelet.nextBatch(now)
const results = [
  { ...bench('bracelet batch (60 s)', batches, 'vitals', BraceletBatchType), rowsPerMessage: expectedRows('vitals', sample) },
  { ...bench('single alarm', alarmFrames, 'alarm', AlarmEventType), rowsPerMessage: 1 },
]
process.stdout.write(JSON.stringify({ benchmark: 'hot-path', machine: machine(), results, rowsSunk: sunk }, null, 2) + '\n')
