/**
 * VF_ACK_AFTER=log against =store, embedded chDB, in the same run: the PUBACK latency of bracelet
 * batches (bulk lane) and of alarms (priority lane) at a paced load, then how many bracelet batches
 * a second are acknowledged at saturation, and their latency there. The load generator runs in its
 * own process (bench/load-generator.ts), over TLS at QoS 1.
 *
 * Three cases, each on a fresh node and data directory:
 *  - `log`: the default, a PUBACK once the rows are in the write-ahead log;
 *  - `store`: a PUBACK once they are also inserted, the part made durable by a syncfs after the insert
 *    (what VF_ACK_AFTER=store does in embedded mode);
 *  - `store, fsync per part`: the alternative that was not taken, measured here only: the logged tables
 *    fsync every inserted part (migration 9's settings) and no syncfs runs.
 * Usage: npx tsx bench/ack-after.bench.ts [bracelets=50] [seconds=10] [pacedPerDevice=4] [window=20] [rounds=2]
 */
import { execFile } from 'node:child_process'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'
import type { Percentiles } from '../simulators/percentiles.ts'

const bracelets = Number(process.argv[2] ?? 50)
const seconds = Number(process.argv[3] ?? 10)
const paced = Number(process.argv[4] ?? 4)
const window = Number(process.argv[5] ?? 20)
const rounds = Number(process.argv[6] ?? 2)
const ALARM_DEVICES = 5
const ALARMS_PER_DEVICE = 4

interface Generated { acked: number; seconds: number; startedAt: number; exhausted: number; cores: number; pubackMs: Percentiles }
interface Device { tenant: string; device: string; secret: string; key: string; keyId: number }

async function generate (node: IngestNode, stream: 'alarm' | 'vitals', devices: Device[], frames: number, firstSeq: number, opts: { secs: number; ratePerDevice?: number }): Promise<Generated> {
  return await new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--import', 'tsx', 'bench/load-generator.ts'], { maxBuffer: 1 << 20 }, (err, stdout) => {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- ExecFileException is an Error; @types/node declares it through an Omit<> the rule does not see through
      if (err) { reject(err); return }
      resolve(JSON.parse(stdout) as Generated)
    })
    child.stdin!.end(JSON.stringify({ port: node.mqtts.port, ca: node.caPem, seconds: opts.secs, window, stream, frames, devices, firstSeq, ratePerDevice: opts.ratePerDevice }))
  })
}

async function enroll (node: IngestNode, family: 'calarm' | 'bracelet', n: number): Promise<Device[]> {
  const out: Device[] = []
  for (let i = 0; i < n; i++) {
    const e = await node.registry.enrollDevice({ tenant: 'bench', device: `${family}-${i}`, family, patient: 'p' })
    out.push({ tenant: 'bench', device: e.device, secret: e.secret, key: e.key, keyId: e.keyId })
  }
  return out
}

async function samples (node: IngestNode): Promise<number> {
  const r = await (await node.storage.conn.client.query({ query: `SELECT count() AS n FROM ${node.storage.conn.table('vital_samples')}`, format: 'JSONEachRow' })).json<{ n: string }>()
  return Number(r[0]!.n)
}

type Case = 'log' | 'store' | 'store, fsync per part'
const MIGRATION_9 = 'fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1'

async function runCase (name: Case): Promise<Record<string, unknown>> {
  const dir = tempDir('vf-bench-ack-')
  const fsyncPerPart = name === 'store, fsync per part'
  const node = await startNode(testConfig(dir.path, {
    ACK_AFTER: name === 'log' ? 'log' : 'store', BATCH_MAX_AGE_MS: 50, DEVICE_AUTH_COST: 10, PUBLISH_RATE: 100_000, PUBLISH_BURST: 1_000_000,
  }), undefined, undefined, fsyncPerPart ? { syncParts: async () => {} } : undefined)
  if (fsyncPerPart) {
    for (const t of ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status', 'device_sequences']) {
      await node.storage.conn.client.command({ query: `ALTER TABLE ${node.storage.conn.table(t)} MODIFY SETTING ${MIGRATION_9}` })
    }
  }
  await node.registry.createTenant('bench', 'bench')
  await node.registry.createPatient('bench', 'p')
  for (const category of ['vitals', 'sleep', 'activity'] as const) {
    await node.registry.recordConsent({ tenant: 'bench', patient: 'p', purpose: 'care', category, action: 'grant', recordedBy: 'bench', source: 'app', validFromMs: 0 })
  }
  const fleet = await enroll(node, 'bracelet', bracelets)
  const alarms = await enroll(node, 'calarm', ALARM_DEVICES)
  // 1. paced: every bracelet `paced` batches a second, and a few alarm devices beside them
  const pacedFrames = Math.ceil(paced * seconds * 1.2) + 2
  const [pacedRun, alarmRun] = await Promise.all([
    generate(node, 'vitals', fleet, pacedFrames, 1, { secs: seconds, ratePerDevice: paced }),
    generate(node, 'alarm', alarms, Math.ceil(ALARMS_PER_DEVICE * seconds * 1.2) + 2, 1, { secs: seconds, ratePerDevice: ALARMS_PER_DEVICE }),
  ])
  await node.storage.flush()
  // 2. saturation: `window` batches in flight per bracelet, frames sized from a 2 s warm-up (1.5× margin)
  const warmFrames = 400
  const warm = await generate(node, 'vitals', fleet, warmFrames, pacedFrames + 1, { secs: 2 })
  const frames = Math.ceil(warm.acked / warm.seconds * seconds * 1.5 / bracelets) + window
  await node.storage.flush()
  const before = await samples(node)
  const saturated = await generate(node, 'vitals', fleet, frames, pacedFrames + warmFrames + 1, { secs: seconds })
  await node.storage.flush()
  // from the generator's first publish until the last row is stored
  const storedSeconds = (Date.now() - saturated.startedAt) / 1000
  const stored = (await samples(node)) - before
  await node.close()
  dir.remove()
  const perSec = (g: Generated): number => Math.round(g.acked / g.seconds)
  return {
    case: name,
    paced: {
      braceletBatchesPerSec: perSec(pacedRun), braceletPubackMs: pacedRun.pubackMs, generatorBound: pacedRun.exhausted > 0,
      alarmsPerSec: perSec(alarmRun), alarmPubackMs: alarmRun.pubackMs,
    },
    saturated: {
      braceletBatchesPerSec: perSec(saturated), storedSamplesPerSec: Math.round(stored / storedSeconds), braceletPubackMs: saturated.pubackMs,
      generatorBound: saturated.exhausted > 0, generatorCores: saturated.cores,
    },
  }
}

const results: Array<Record<string, unknown>> = []
for (let r = 0; r < rounds; r++) {
  for (const c of ['log', 'store', 'store, fsync per part'] as const) {
    process.stderr.write(`ack-after: round ${r + 1}, ${c}\n`)
    results.push({ round: r + 1, ...await runCase(c) })
  }
}
process.stdout.write(JSON.stringify({
  benchmark: 'ack-after', machine: machine(), bracelets, seconds, pacedBatchesPerBraceletPerSec: paced, alarmDevices: ALARM_DEVICES,
  alarmsPerDevicePerSec: ALARMS_PER_DEVICE, inflightPerBraceletAtSaturation: window, results,
}, null, 2) + '\n')
