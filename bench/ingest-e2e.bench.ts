/**
 * End to end over TLS at QoS 1, with the load generator in its own process:
 *  1. small messages (alarms, 1 row): vitalflow vs a bare aedes whose
 *     authorizePublish only counts, same generator, same frames. Target ≥ 60%.
 *  2. bracelet batches (~66 rows): stored samples/s vs chDB's own RowBinary
 *     insert ceiling for the same rows (file() insert). Target ≥ 75%.
 * Usage: npx tsx bench/ingest-e2e.bench.ts [devices=50] [seconds=10] [window=20]
 */
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { Aedes } from 'aedes'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { TLS_OPTIONS, loadTls } from '../src/broker/index.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const devicesN = Number(process.argv[2] ?? 50)
const seconds = Number(process.argv[3] ?? 10)
const window = Number(process.argv[4] ?? 20)

async function generate (port: number, ca: string, stream: 'alarm' | 'vitals', devices: unknown[]): Promise<{ acked: number; seconds: number }> {
  return await new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--import', 'tsx', 'bench/load-generator.ts'], { maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) reject(err); else resolve(JSON.parse(stdout) as { acked: number; seconds: number })
    })
    child.stdin!.end(JSON.stringify({ port, ca, seconds, window, stream, devices }))
  })
}

async function enroll (node: IngestNode, family: 'calarm' | 'bracelet', n: number): Promise<unknown[]> {
  const out = []
  for (let i = 0; i < n; i++) {
    const e = await node.registry.enrollDevice({ tenant: 'bench', device: `${family}-${i}`, family, patient: 'p' })
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
const alarmDevices = await enroll(node, 'calarm', devicesN)
const braceletDevices = await enroll(node, 'bracelet', devicesN)

// 1. small messages: bare aedes ceiling (same TLS certificate, authorizePublish only counts), then vitalflow
const bare = await Aedes.createBroker({ authenticate: (_c, _u, _p, done) => done(null, true), authorizePublish: (_c, _p, cb) => cb(null) })
const tls = loadTls({ dataDir: dir.path })
const bareServer = createTlsServer({ ...TLS_OPTIONS, key: tls.key, cert: tls.cert }, (s) => { s.setNoDelay(true); bare.handle(s) })
bareServer.listen(0, '127.0.0.1')
await once(bareServer, 'listening')
const bareRun = await generate((bareServer.address() as { port: number }).port, ca, 'alarm', alarmDevices)
bareServer.close()
await new Promise<void>((resolve) => bare.close(() => resolve()))
const vfSmall = await generate(node.mqtts.port, ca, 'alarm', alarmDevices)
await node.storage.flush()

// 2. bracelet batches: stored rows/s, then chDB's RowBinary ceiling on the same rows
const rowsBefore = await count()
const t0 = performance.now()
const vfBatches = await generate(node.mqtts.port, ca, 'vitals', braceletDevices)
await node.storage.flush()
const storedSeconds = (performance.now() - t0) / 1000
const stored = (await count()) - rowsBefore
const { client, database } = node.storage.conn
const file = join(dir.path, 'rows.bin')
// the same rows, written as RowBinary by ClickHouse itself
await client.command({ query: `INSERT INTO FUNCTION file({file:String}, RowBinary) SELECT * FROM ${database}.vital_samples WHERE device_id LIKE 'bracelet-%'`, query_params: { file } })
await client.command({ query: `CREATE TABLE ${database}.ceiling AS ${database}.vital_samples` })
const structure = (await (await client.query({
  query: `SELECT arrayStringConcat(groupArray(concat(name, ' ', type)), ', ') AS s FROM (SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'vital_samples' ORDER BY position)`,
  query_params: { db: database }, format: 'JSONEachRow',
})).json<{ s: string }>())[0]!.s
const c0 = performance.now()
await client.command({ query: `INSERT INTO ${database}.ceiling SELECT * FROM file({file:String}, RowBinary, {structure:String})`, query_params: { file, structure } })
const ceilingSeconds = (performance.now() - c0) / 1000
const ceilingRows = Number((await (await client.query({ query: `SELECT count() AS n FROM ${database}.ceiling`, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n)

async function count (): Promise<number> {
  const r = await (await node.storage.conn.client.query({ query: `SELECT count() AS n FROM ${node.storage.conn.database}.vital_samples`, format: 'JSONEachRow' })).json<{ n: string }>()
  return Number(r[0]!.n)
}

const smallBare = Math.round(bareRun.acked / bareRun.seconds)
const smallVf = Math.round(vfSmall.acked / vfSmall.seconds)
const storedPerSec = Math.round(stored / storedSeconds)
const ceilingPerSec = Math.round(ceilingRows / ceilingSeconds)
process.stdout.write(JSON.stringify({
  benchmark: 'ingest-e2e', machine: machine(), devices: devicesN, seconds, inflightPerConnection: window,
  smallMessages: { bareAedesMsgsPerSec: smallBare, vitalflowMsgsPerSec: smallVf, ratio: Math.round(smallVf / smallBare * 100) / 100, target: 0.6 },
  braceletBatches: {
    batchesAckedPerSec: Math.round(vfBatches.acked / vfBatches.seconds), storedSamplesPerSec: storedPerSec, storedSamples: stored,
    chdbRowBinaryCeilingRowsPerSec: ceilingPerSec, ceilingRows, ratio: Math.round(storedPerSec / ceilingPerSec * 100) / 100, target: 0.75,
  },
}, null, 2) + '\n')
await node.close()
dir.remove()
