/**
 * End to end over TLS at QoS 1, with the load generator in its own process:
 *  1. small messages (alarms, 1 row): vitalflow vs a bare aedes whose
 *     authorizePublish only counts, same generator, same frames. Target ≥ 60%.
 *  1b. the same small messages at a fixed rate (`paced` per device per second, one in flight each, as
 *     a fleet sends them, not saturating): the node's CPU per message (all its threads) and PUBACK
 *     latency, vitalflow vs the same bare aedes at the same rate.
 *  2. bracelet batches (~66 rows): stored samples/s vs chDB's own RowBinary
 *     insert ceiling for the same rows (file() insert). Target ≥ 75%. Also against
 *     chDB's Native ceiling: what the node sends its samples as since 2026-12-03.
 * Frames are prepared per device (sealed over their sequence numbers, so never reused), sized from a
 * 2 s warm-up with a 1.5× margin; a run that still uses them all up is reported generator-bound.
 * Every run is made twice, by MQTT 3.1.1 devices and by MQTT 5 devices (each version its own
 * devices, so their sequence numbers never meet), and reported side by side.
 * Usage: npx tsx bench/ingest-e2e.bench.ts [devices=50] [seconds=10] [window=20] [paced=200]
 */
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { Aedes } from 'aedes'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { TLS_OPTIONS, loadTls } from '../src/broker/index.ts'
import { nativeLayout } from '../src/storage/native.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { asShipped, machine } from './harness.ts'

// the node as `npm start` runs it (its V8 flags), the baselines in the same process alike
asShipped()

const devicesN = Number(process.argv[2] ?? 50)
const seconds = Number(process.argv[3] ?? 10)
const window = Number(process.argv[4] ?? 20)
const paced = Number(process.argv[5] ?? 200)

interface Generated { acked: number; seconds: number; startedAt: number; exhausted: number; cores: number; framesPerDevice: number; generatorBound: boolean; pubackMs: { p50: number; p99: number } }

/**
 * Runs the load generator for `secs` with `frames` prepared per device. Frames are sealed over their
 * sequence number, so they cannot be reused: a device that sends all of them stops. Such a run is
 * reported as generator-bound (its rate is a floor of what the broker takes), not failed.
 */
type Version = 4 | 5
async function generate (port: number, ca: string, stream: 'alarm' | 'vitals', devices: unknown[], secs: number, frames: number, firstSeq = 1, protocolVersion: Version = 4, ratePerDevice?: number): Promise<Generated> {
  return await new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--import', 'tsx', 'bench/load-generator.ts'], { maxBuffer: 1 << 20 }, (err, stdout) => {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- ExecFileException is an Error; @types/node declares it through an Omit<> the rule does not see through
      if (err) { reject(err); return }
      const g = JSON.parse(stdout) as Omit<Generated, 'framesPerDevice' | 'generatorBound'>
      resolve({ ...g, framesPerDevice: frames, generatorBound: g.exhausted > 0 })
    })
    child.stdin!.end(JSON.stringify({ port, ca, seconds: secs, window, stream, frames, devices, firstSeq, protocolVersion, ...(ratePerDevice === undefined ? {} : { ratePerDevice }) }))
  })
}

/** A short warm-up run measures the rate; the real run gets frames for 1.5 times that over its whole length. */
const WARMUP_SECONDS = 2
const WARMUP_FRAMES_PER_SECOND = { alarm: 150_000, vitals: 30_000 }
async function sized (port: number, stream: 'alarm' | 'vitals', devices: unknown[], v: Version = 4): Promise<{ warmup: Generated; frames: number }> {
  const warmup = await generate(port, ca, stream, devices, WARMUP_SECONDS, Math.ceil(WARMUP_SECONDS * WARMUP_FRAMES_PER_SECOND[stream] / devices.length), 1, v)
  const rate = warmup.acked / warmup.seconds
  return { warmup, frames: Math.ceil(rate * seconds * 1.5 / devices.length) + window }
}

// this process's CPU (node, TLS, aedes, chDB's threads) sampled every 100 ms, to read off what it used while a generator published
const cpuSamples: Array<[number, number]> = []
const cpuTimer = setInterval(() => { const u = process.cpuUsage(); cpuSamples.push([Date.now(), u.user + u.system]) }, 100)
function nodeCores (from: number, to: number): number {
  const inside = cpuSamples.filter(([t]) => t >= from && t <= to)
  if (inside.length < 2) return NaN
  const [ta, ua] = inside[0]!
  const [tb, ub] = inside[inside.length - 1]!
  return Math.round((ub - ua) / 1000 / (tb - ta) * 100) / 100
}

async function enroll (node: IngestNode, family: 'calarm' | 'bracelet', n: number, prefix: string = family): Promise<unknown[]> {
  const out = []
  for (let i = 0; i < n; i++) {
    const e = await node.registry.enrollDevice({ tenant: 'bench', device: `${prefix}-${i}`, family, patient: 'p' })
    out.push({ tenant: 'bench', device: e.device, secret: e.secret, key: e.key, keyId: e.keyId })
  }
  return out
}

const dir = tempDir('vf-bench-')
const node = await startNode(testConfig(dir.path, { DEVICE_AUTH_COST: 10, PUBLISH_RATE: 100_000, PUBLISH_BURST: 1_000_000, BATCH_MAX_AGE_MS: 100 }))
await node.registry.createTenant('bench', 'bench')
await node.registry.createPatient('bench', 'p')
for (const category of ['vitals', 'sleep', 'activity'] as const) {
  await node.registry.recordConsent({ tenant: 'bench', patient: 'p', purpose: 'care', category, action: 'grant', recordedBy: 'bench', source: 'app', validFromMs: 0 })
}
const ca = node.caPem!
const devices = {
  4: { alarm: await enroll(node, 'calarm', devicesN), vitals: await enroll(node, 'bracelet', devicesN) },
  5: { alarm: await enroll(node, 'calarm', devicesN, 'calarm5'), vitals: await enroll(node, 'bracelet', devicesN, 'bracelet5') },
} as const
const alarmDevices = devices[4].alarm

// 1. small messages: bare aedes ceiling (same TLS certificate, authorizePublish only counts), then vitalflow
const bare = await Aedes.createBroker({ authenticate: (_c, _u, _p, done) => done(null, true), authorizePublish: (_c, _p, cb) => cb(null) })
const tls = loadTls({ dataDir: dir.path })
const bareServer = createTlsServer({ ...TLS_OPTIONS, key: tls.key, cert: tls.cert }, (s) => { s.setNoDelay(true); bare.handle(s) })
bareServer.listen(0, '127.0.0.1')
await once(bareServer, 'listening')
const barePort = (bareServer.address() as { port: number }).port
// the fastest of the runs sizes the frames of all small-message runs (bare aedes checks no sequence numbers)
const smallSize = await sized(barePort, 'alarm', alarmDevices)
const bareRuns = { 4: await generate(barePort, ca, 'alarm', alarmDevices, seconds, smallSize.frames), 5: await generate(barePort, ca, 'alarm', alarmDevices, seconds, smallSize.frames, 1, 5) }
// 1b. at a fixed rate: frames for the run and a margin (a device behind its schedule sends at once)
const pacedFrames = Math.ceil(paced * seconds * 1.1) + 10
const barePaced = await generate(barePort, ca, 'alarm', alarmDevices, seconds, pacedFrames, 1, 4, paced)
bareServer.close()
await new Promise<void>((resolve) => bare.close(() => resolve()))
const vfSmalls = {} as Record<Version, Generated>
for (const v of [4, 5] as const) vfSmalls[v] = await generate(node.mqtts.port, ca, 'alarm', devices[v].alarm, seconds, smallSize.frames, 1, v)
await node.storage.flush()
// after the saturated run's sequence numbers
const vfPaced = await generate(node.mqtts.port, ca, 'alarm', devices[4].alarm, seconds, pacedFrames, smallSize.frames + 1, 4, paced)
await node.storage.flush()

// 2. bracelet batches: stored rows/s, then chDB's RowBinary and Native ceilings on the same rows
interface BatchRun { size: Awaited<ReturnType<typeof sized>>; run: Generated; stored: number; storedSeconds: number }
const batchRuns = {} as Record<Version, BatchRun>
for (const v of [4, 5] as const) {
  const size = await sized(node.mqtts.port, 'vitals', devices[v].vitals, v)
  await node.storage.flush()
  const rowsBefore = await count()
  // after the warm-up's sequence numbers: the node would refuse them as replays
  const run = await generate(node.mqtts.port, ca, 'vitals', devices[v].vitals, seconds, size.frames, size.warmup.framesPerDevice + 1, v)
  await node.storage.flush()
  // from the generator's first publish until the last row is stored (not its start-up or frame preparation)
  batchRuns[v] = { size, run, storedSeconds: (Date.now() - run.startedAt) / 1000, stored: (await count()) - rowsBefore }
}
const { client, database } = node.storage.conn
const columns = await (await client.query({
  query: 'SELECT name, type FROM system.columns WHERE database = {db:String} AND table = \'vital_samples\' ORDER BY position',
  query_params: { db: database }, format: 'JSONEachRow',
})).json<{ name: string; type: string }>()
const structureOf = (types: readonly string[]): string => columns.map((c, i) => `${c.name} ${types[i]!}`).join(', ')
/**
 * chDB alone inserting the same rows from a file written by ClickHouse itself: as RowBinary (the issue's
 * ceiling), and as Native with LowCardinality sent as String, what the node now sends (src/storage/native.ts).
 */
async function ceiling (format: 'RowBinary' | 'Native'): Promise<{ rowsPerSec: number; rows: number; cores: number }> {
  const file = join(dir.path, `rows.${format}`)
  const own = columns.map((c) => c.type)
  const types = structureOf(format === 'Native' ? nativeLayout(own)!.sentAs : own)
  await client.command({
    query: `INSERT INTO FUNCTION file({file:String}, ${format}, {types:String}) SELECT * FROM ${database}.vital_samples WHERE device_id LIKE 'bracelet-%' AND device_id NOT LIKE 'bracelet5-%'`,
    query_params: { file, types },
  })
  const table = `${database}.ceiling_${format}`
  await client.command({ query: `CREATE TABLE ${table} AS ${database}.vital_samples` })
  const c0 = performance.now()
  const u0 = process.cpuUsage()
  await client.command({ query: `INSERT INTO ${table} SELECT * FROM file({file:String}, ${format}, {types:String})`, query_params: { file, types } })
  const secs = (performance.now() - c0) / 1000
  const u1 = process.cpuUsage(u0)
  const rows = Number((await (await client.query({ query: `SELECT count() AS n FROM ${table}`, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n)
  return { rowsPerSec: Math.round(rows / secs), rows, cores: Math.round((u1.user + u1.system) / 1e6 / secs * 100) / 100 }
}
const rowBinaryCeiling = await ceiling('RowBinary')
const nativeCeiling = await ceiling('Native')

async function count (): Promise<number> {
  const r = await (await node.storage.conn.client.query({ query: `SELECT count() AS n FROM ${node.storage.conn.database}.vital_samples`, format: 'JSONEachRow' })).json<{ n: string }>()
  return Number(r[0]!.n)
}

clearInterval(cpuTimer)
const perSec = (g: Generated): number => Math.round(g.acked / g.seconds)
const cores = (g: Generated, secs = g.seconds): number => nodeCores(g.startedAt, g.startedAt + secs * 1000)
const small = (v: Version): object => {
  const bareRun = bareRuns[v]
  const vf = vfSmalls[v]
  return {
    bareAedesMsgsPerSec: perSec(bareRun), vitalflowMsgsPerSec: perSec(vf), ratio: Math.round(perSec(vf) / perSec(bareRun) * 100) / 100, target: 0.6,
    generatorBound: { bareAedes: bareRun.generatorBound, vitalflow: vf.generatorBound },
    cores: { bareAedes: cores(bareRun), vitalflow: cores(vf), generatorWithBare: bareRun.cores, generatorWithVitalflow: vf.cores },
  }
}
/**
 * This process's CPU per message while the generator published, in µs (all its threads). While bare aedes
 * runs, the node is started and idle in the same process: its background threads (merges) count there too.
 */
const cpuPerMessage = (g: Generated): number => Math.round(cores(g) * 1e6 / (g.acked / g.seconds) * 10) / 10
const pacedCase = (g: Generated): object => ({
  msgsPerSec: perSec(g), cpuUsPerMessage: cpuPerMessage(g), cores: cores(g), pubackMs: { p50: g.pubackMs.p50, p99: g.pubackMs.p99 }, generatorCores: g.cores, generatorBound: g.generatorBound,
})
const batches = (v: Version): object => {
  const { size, run, stored, storedSeconds } = batchRuns[v]
  const storedPerSec = Math.round(stored / storedSeconds)
  return {
    batchesAckedPerSec: perSec(run), storedSamplesPerSec: storedPerSec, storedSamples: stored,
    ratio: Math.round(storedPerSec / rowBinaryCeiling.rowsPerSec * 100) / 100, target: 0.75,
    ratioToNativeCeiling: Math.round(storedPerSec / nativeCeiling.rowsPerSec * 100) / 100, framesPerDevice: size.frames, generatorBound: run.generatorBound,
    cores: { vitalflowWhilePublishing: cores(run), vitalflowUntilStored: cores(run, storedSeconds), generator: run.cores },
  }
}
process.stdout.write(JSON.stringify({
  benchmark: 'ingest-e2e', machine: machine(), devices: devicesN, seconds, inflightPerConnection: window,
  smallMessages: {
    // frames per device from a measured warm-up (3.1.1, bare aedes); a run that used them all up is a floor, not a ceiling
    framesPerDevice: smallSize.frames, warmupMsgsPerSec: perSec(smallSize.warmup),
    mqtt311: small(4), mqtt5: small(5),
  },
  // MQTT 3.1.1, one message in flight per device on a schedule
  pacedSmallMessages: {
    ratePerDevice: paced, offeredMsgsPerSec: paced * devicesN,
    bareAedes: pacedCase(barePaced), vitalflow: pacedCase(vfPaced),
    cpuRatio: Math.round(cpuPerMessage(vfPaced) / cpuPerMessage(barePaced) * 100) / 100,
  },
  braceletBatches: {
    chdbRowBinaryCeilingRowsPerSec: rowBinaryCeiling.rowsPerSec, ceilingRows: rowBinaryCeiling.rows, ceilingCores: rowBinaryCeiling.cores,
    chdbNativeCeiling: nativeCeiling,
    mqtt311: batches(4), mqtt5: batches(5),
  },
}, null, 2) + '\n')
await node.close()
dir.remove()
