/**
 * What storing a sample costs the node, merges included, at a fixed offered load.
 *
 * The real ingest path (replay window, decrypt, decode, consent, RowBinary rows, write-ahead log,
 * batcher, embedded chDB) without sockets, fed pre-sealed frames on a schedule shaped like the
 * fleet soak: per bracelet one 60 s batch a second (60x simulated time), cVitals kits and cAlarms
 * for half as many patients (a spot measurement every 20 s, a heartbeat every 10 s), a device
 * status from every device every 30 s, one patient in ten without consent (their vitals and spot
 * measurements filtered: a message that stores no row). A dashboard read (the patient page's
 * charts, then latest values) runs every 250 ms on the connection the API reads from, and, as the
 * simulator does, the highest queryable sequence number per device is polled every 200 ms
 * (device_heads) to time message → queryable.
 * After the publishing window, everything is flushed and the node sits idle for `settle`
 * seconds so merges of the run's parts are counted too. CPU is read per thread group from
 * /proc/self/task (bench/threads.ts).
 *
 * Usage: npx tsx bench/storage-cost.bench.ts [bracelets=300] [seconds=60] [settle=30] [batchAgeMs=50]
 * (batchAgeMs is VF_BATCH_MAX_AGE_MS; at the default 50 the batcher inserts as often as storage keeps up,
 * so a cheaper insert shows as more, smaller inserts: compare CPU at a fixed age too)
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { ConsentIndex } from '../src/consent/index.ts'
import { prepareKey } from '../src/crypto/index.ts'
import type { DeviceId, PatientId, TenantId } from '../src/ids.ts'
import { createIngest, createMetrics } from '../src/pipeline/index.ts'
import type { DeviceRecord, Family } from '../src/registry/index.ts'
import { createStorage, selectRows, type StorageConnection } from '../src/storage/index.ts'
import { createQueries } from '../src/api/index.ts'
import { DeviceSealer, createAlarmModel, createBraceletModel, createSpotModel, createStatusModel } from '../devices/index.ts'
import { tempDir } from '../test/support/node.ts'
import { asShipped, machine } from './harness.ts'
import { ThreadCpu } from './threads.ts'

// the node as `npm start` runs it (its V8 flags), the baselines in the same process alike
asShipped()

const bracelets = Number(process.argv[2] ?? 300)
const seconds = Number(process.argv[3] ?? 60)
const settle = Number(process.argv[4] ?? 30)
const batchAgeMs = Number(process.argv[5] ?? 50)
const TENANTS = ['care-1', 'care-2', 'care-3']

interface Event { at: number; seq: number; topic: string; frame: Buffer; sender: { record: DeviceRecord; clientId: string; remoteAddress: string } }

const consent = new ConsentIndex()
const events: Event[] = []
const simStart = Date.now() - (seconds + 120) * 60_000 // 60x: each real second is a simulated minute, all of it in the past
const patients: Array<{ tenant: string; patient: string }> = []

function device (tenant: string, id: string, family: Family, patient: string): { record: DeviceRecord; sealer: DeviceSealer } {
  const key = randomBytes(32)
  const record: DeviceRecord = {
    tenant: tenant as TenantId, device: id as DeviceId, family, patient: patient as PatientId, bindings: [{ fromMs: 0, patient: patient as PatientId }],
    gateway: null, secretHash: '', keys: new Map([[1, { aead: prepareKey(key), notAfterMs: null }]]), revokedAtMs: null,
  }
  return { record, sealer: new DeviceSealer({ tenant, device: id, keyId: 1, key }) }
}

for (let i = 0; i < bracelets; i++) {
  const tenant = TENANTS[i % TENANTS.length]!
  const patient = `p-${i}`
  if (i % 10 !== 9) {
    for (const category of ['vitals', 'sleep', 'activity', 'spot_measurements', 'location'] as const) {
      consent.apply({ tenant, patient, purpose: 'care', category, action: 'grant', version: 1, recordedBy: 'bench', source: 'app', recordedAtMs: 0, validFromMs: 0 })
    }
    patients.push({ tenant, patient })
  }
  const streams: Array<{ family: Family; id: string; every: number; make: (sim: number) => [string, unknown] }> = []
  const bm = createBraceletModel(i)
  const bs = createStatusModel(i, 'bracelet')
  streams.push({ family: 'bracelet', id: `brc-${i}`, every: 1000, make: (sim) => ['vitals', bm.nextBatch(sim)] })
  streams.push({ family: 'bracelet', id: `brc-${i}`, every: 30_000, make: (sim) => ['status', bs.next(sim)] })
  if (i % 2 === 0) {
    const sm = createSpotModel(i)
    const ss = createStatusModel(i, 'cvitals')
    streams.push({ family: 'cvitals', id: `kit-${i}`, every: 20_000, make: (sim) => ['spot', sm.next(sim)] })
    streams.push({ family: 'cvitals', id: `kit-${i}`, every: 30_000, make: (sim) => ['status', ss.next(sim)] })
    const am = createAlarmModel(i)
    const as = createStatusModel(i, 'calarm')
    streams.push({ family: 'calarm', id: `alm-${i}`, every: 10_000, make: (sim) => ['alarm', am.next(sim)] })
    streams.push({ family: 'calarm', id: `alm-${i}`, every: 30_000, make: (sim) => ['status', as.next(sim)] })
  }
  // one sealer per device, sealing its messages in time order (its sequence numbers rise with them)
  const byDevice = new Map<string, ReturnType<typeof device>>()
  const own: Array<{ at: number; id: string; make: () => [string, unknown] }> = []
  for (const s of streams) {
    if (!byDevice.has(s.id)) byDevice.set(s.id, device(tenant, s.id, s.family, patient))
    for (let at = Math.floor((i / bracelets) * s.every); at < seconds * 1000; at += s.every) {
      const sim = simStart + at * 60
      own.push({ at, id: s.id, make: () => s.make(sim) })
    }
  }
  own.sort((a, b) => a.at - b.at)
  for (const o of own) {
    const d = byDevice.get(o.id)!
    const [stream, msg] = o.make()
    const sealed = d.sealer.seal(stream as 'vitals', msg as never)
    events.push({ at: o.at, seq: sealed.seq, topic: sealed.topic, frame: Buffer.from(sealed.frame), sender: { record: d.record, clientId: o.id, remoteAddress: '127.0.0.1' } })
  }
}
events.sort((a, b) => a.at - b.at)

const dir = tempDir('vf-storage-cost-')
const flushes = new Map<string, { n: number; ms: number; rows: number }>()
const storage = await createStorage({
  dataDir: dir.path, database: 'vitalflow',
  batch: { maxRows: 50_000, maxAgeMs: batchAgeMs },
  wal: { segmentBytes: 64 * 1024 ** 2, budgetBytes: 1024 ** 3 },
  onFlush: (r) => {
    const f = flushes.get(r.table) ?? { n: 0, ms: 0, rows: 0 }
    f.n++; f.ms += r.ms; f.rows += r.rows
    flushes.set(r.table, f)
  },
})
// where the API reads: its own connection when storage has one (embedded chDB runs one statement at a time per
// connection); typed loosely so that the same file runs on a checkout from before it existed
const readConn: StorageConnection = (storage.conn as Omit<StorageConnection, 'requests'> & { requests?: StorageConnection }).requests ?? storage.conn
const queries = createQueries(readConn)
const metrics = createMetrics()
const ingest = createIngest({ consent, storage, metrics })

const cpu = new ThreadCpu()
const wallStart = performance.now()
const readMs: number[] = []
let reading = true
const reader = (async () => {
  let k = 0
  while (reading) {
    const p = patients[k++ % patients.length]!
    const t0 = performance.now()
    if (k % 2 === 0) await queries.seriesMany(p.tenant, p.patient, ['heart_rate', 'spo2', 'respiration_rate'], simStart, Date.now(), 240)
    else await queries.latest(p.tenant, p.patient)
    readMs.push(performance.now() - t0)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
})()

// message → queryable, as the simulator times it: the per-device head, polled
const pending = new Map<string, Array<[number, number]>>()
const queryableMs: number[] = []
const poller = (async () => {
  while (reading || [...pending.values()].some((l) => l.length > 0)) {
    const heads = await selectRows<{ d: string; s: string }>(readConn, `SELECT device_id AS d, toString(max(seq)) AS s FROM ${readConn.table('device_heads')} GROUP BY device_id`)
    const now = performance.now()
    for (const h of heads) {
      const list = pending.get(h.d)
      if (list === undefined) continue
      const top = Number(h.s)
      let k = 0
      while (k < list.length && list[k]![0] <= top) queryableMs.push(now - list[k++]![1])
      if (k > 0) list.splice(0, k)
    }
    if (!reading && performance.now() - wallStart > (seconds + settle + 10) * 1000) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
})()

let next = 0
let acked = 0
let refused = 0
const durable: Array<Promise<void>> = []
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const now = performance.now() - wallStart
    while (next < events.length && events[next]!.at <= now) {
      const e = events[next++]!
      const out = ingest.ingest(e.sender, e.topic, e.frame)
      if (out.kind === 'stored') {
        durable.push(out.durable.then(() => { acked++ }))
        let list = pending.get(e.sender.clientId)
        if (list === undefined) { list = []; pending.set(e.sender.clientId, list) }
        list.push([e.seq, performance.now()])
      } else {
        refused++
      }
    }
    if (next < events.length) setTimeout(tick, 10)
    else resolve()
  }
  tick()
})
const publishSeconds = (performance.now() - wallStart) / 1000
await Promise.all(durable)
await storage.flush()
const storedSeconds = (performance.now() - wallStart) / 1000
await new Promise((resolve) => setTimeout(resolve, settle * 1000))
reading = false
await reader
await poller
const threads = cpu.stop()
const wallSeconds = (performance.now() - wallStart) / 1000

const conn = storage.conn
const rows = Object.fromEntries((await selectRows<{ t: string; n: string }>(conn, `SELECT 'vital_samples' AS t, count() AS n FROM ${conn.table('vital_samples')}
  UNION ALL SELECT 'spot_measurements', count() FROM ${conn.table('spot_measurements')} UNION ALL SELECT 'alarm_events', count() FROM ${conn.table('alarm_events')}
  UNION ALL SELECT 'device_status', count() FROM ${conn.table('device_status')}`)).map((r) => [r.t, Number(r.n)]))
const parts = Object.fromEntries((await selectRows<{ table: string; parts: string; bytes: string }>(conn,
  `SELECT table, count() AS parts, sum(bytes_on_disk) AS bytes FROM system.parts WHERE database = {db:String} AND active GROUP BY table ORDER BY table`, { db: conn.database }))
  .map((r) => [r.table, { parts: Number(r.parts), bytes: Number(r.bytes) }]))
await storage.close()
dir.remove()

const samples = rows['vital_samples'] ?? 0
const perMillion = (s: number): number => Math.round(s / samples * 1e6 * 10) / 10
const percentiles = (xs: number[]): Record<string, number> => {
  const sorted = [...xs].sort((a, b) => a - b)
  const pct = (p: number): number => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN) * 10) / 10
  return { n: sorted.length, p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: pct(1) }
}
let commit = ''
try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim() } catch { /* not a checkout */ }
process.stdout.write(JSON.stringify({
  benchmark: 'storage-cost', machine: machine(), commit, bracelets, seconds, settle, batchAgeMs,
  messages: events.length, acked, refused, publishSeconds: Math.round(publishSeconds * 10) / 10, storedSeconds: Math.round(storedSeconds * 10) / 10, wallSeconds: Math.round(wallSeconds * 10) / 10,
  rows, samplesPerSec: Math.round(samples / publishSeconds),
  cpuSeconds: threads, cpuSecondsPerMillionSamples: { total: perMillion(threads.total), ...Object.fromEntries(Object.entries(threads.groups).map(([k, v]) => [k, perMillion(v)])) },
  inserts: Object.fromEntries([...flushes].map(([t, f]) => [t, { inserts: f.n, rows: f.rows, meanMs: Math.round(f.ms / f.n) }])),
  partsAtEnd: parts,
  dashboardReadMs: { ...percentiles(readMs), readsOwnConnection: readConn !== storage.conn },
  messageToQueryableMs: { ...percentiles(queryableMs), neverSeen: [...pending.values()].reduce((n, l) => n + l.length, 0) },
}, null, 2) + '\n')
