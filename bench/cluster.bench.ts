/**
 * Messages per second with 1, 2 and 3 ingest nodes on this machine: for each N, a fresh redis-server,
 * N vitalflow nodes (child processes, each its own embedded chDB) joined over it, and a Debian haproxy
 * in front (TCP, PROXY protocol v2, round robin), all started by the cluster tests' own support code
 * (test/support/). The fleet simulator (simulators/) enrols the same fleet through one node (the
 * change feed brings it to the others) and drives it through HAProxy over TLS at QoS 1: the same
 * devices, speed and duration for every N.
 *
 * Per N: acknowledged messages/s, samples stored/s (vital_samples rows read back from each node's
 * own store through its admin API, against what the simulator expects), PUBACK p50/p99, and per node
 * its CPU seconds (/proc, every thread: chDB runs in the node's process), split into connecting the
 * fleet and the steady run after it, and its resident memory (idle after enrolment, and the most seen
 * while the fleet ran); then the cost an operator sizes with: cores per 1,000 messages/s, per 1,000
 * devices at this run's rate, CPU seconds to connect 1,000 devices, MB per 1,000 connections.
 * At speed S every device sends what a real one sends in S minutes, each minute: a bracelet's batch
 * every 60/S s instead of every minute.
 *
 * Everything (nodes, Redis, HAProxy, the simulator's TLS clients) shares this machine's cores: with 2
 * cores, more nodes cannot take more messages here; what the figures give is each node's cost for its
 * share of the fleet.
 * Usage: npx tsx bench/cluster.bench.ts [devices=2000] [seconds=40] [speed=30] [nodes=1,2,3] [batchMaxAgeMs=50 (VF_BATCH_MAX_AGE_MS)]
 */
import { spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ensureFleetWithResponders } from '../simulators/fleet-store.ts'
import { runFleet } from '../simulators/fleet.ts'
import { startClusterNode, stopNode, type ClusterNode } from '../test/support/cluster.ts'
import { startHaproxy } from '../test/support/haproxy.ts'
import { tempDir } from '../test/support/node.ts'
import { startRedis } from '../test/support/redis.ts'
import { machine } from './harness.ts'

const devices = Number(process.argv[2] ?? 2000)
const seconds = Number(process.argv[3] ?? 40)
const speed = Number(process.argv[4] ?? 30)
const counts = (process.argv[5] ?? '1,2,3').split(',').map(Number)
const batchMaxAgeMs = Number(process.argv[6] ?? 50)
const TENANTS = 2
const BALANCER = '127.0.0.9'
const TICK = 100 // clock ticks per second (getconf CLK_TCK on Linux)

const log = (s: string): void => { process.stderr.write(`cluster-bench: ${s}\n`) }

/** user + system CPU seconds of a process, every thread. */
function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICK
}
function rssMB (pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) / 1024
}
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d

interface NodeFigures {
  name: string; connections: number
  /** CPU over the whole run; of it, while the fleet connected; cores used once it was connected. */
  cpuSeconds: number; connectCpuSeconds: number; steadyCores: number
  rssMB: { idle: number; max: number }; samplesStored: number
}

async function runWith (n: number): Promise<Record<string, unknown>> {
  const dir = tempDir(`vf-bench-cluster-${n}-`)
  const redis = await startRedis()
  const nodes: ClusterNode[] = []
  try {
    for (let i = 0; i < n; i++) {
      nodes.push(await startClusterNode(redis.url, `n${i + 1}`, undefined, {
        VF_PROXY_PROTOCOL_FROM: BALANCER, VF_MAX_CONNECTIONS_PER_TENANT: '1000000', VF_CLUSTER_LIVE_TTL_MS: '3000', VF_CLUSTER_BARRIER_MS: '20000',
        VF_BATCH_MAX_AGE_MS: String(batchMaxAgeMs),
      }))
    }
    const haproxy = await startHaproxy({ dir: dir.path, servers: nodes.map((x) => ({ name: x.name, port: x.mqtts })), proxy: 'v2', source: BALANCER, maxconn: 4 * devices })
    try {
      const t = performance.now()
      const { fleet } = await ensureFleetWithResponders(nodes[0]!.api, join(dir.path, 'fleet.json'), { devices, tenants: TENANTS, log })
      log(`${n} node(s): ${fleet.length} devices enrolled in ${round((performance.now() - t) / 1000)} s`)
      await new Promise((resolve) => setTimeout(resolve, 2000)) // merges after enrolment settle
      const pids = nodes.map((x) => x.proc.pid!)
      const idle = pids.map(rssMB)
      const maxRss = [...idle]
      const connections = nodes.map(() => 0)
      const cpu0 = pids.map(cpuSeconds)
      const since = Date.now()
      // the connect phase (TLS handshakes, log-ins, the replay marks read before each CONNACK) apart from the steady run
      let steady: { cpu: number[]; at: number } | null = null
      const sampler = setInterval(() => {
        for (const [i, p] of pids.entries()) maxRss[i] = Math.max(maxRss[i]!, rssMB(p))
        void Promise.all(nodes.map(async (x, i) => {
          const s = await x.api.request<{ connectedClients: number }>('GET', '/admin/stats')
          connections[i] = Math.max(connections[i]!, s.connectedClients)
        })).catch(() => {})
      }, 1000)
      const result = await runFleet({
        host: '127.0.0.1', port: haproxy.port, ca: nodes.map((x) => x.ca).join('\n'), fleet, seconds, speed,
        behaviour: { duplicateRate: 0, gatewayOutagePerHour: 0 }, seqBase: Date.now() * 1000,
        log: (line) => {
          if (steady === null && line.startsWith('connected ')) steady = { cpu: pids.map(cpuSeconds), at: Date.now() }
          log(line)
        },
      })
      clearInterval(sampler)
      const end = { cpu: pids.map(cpuSeconds), at: Date.now() }
      const cpu = pids.map((_, i) => end.cpu[i]! - cpu0[i]!)
      const from = steady ?? { cpu: cpu0, at: since }
      const steadySeconds = (end.at - from.at) / 1000
      const steadyCpu = pids.map((_, i) => end.cpu[i]! - from.cpu[i]!)
      const connectCpu = pids.map((_, i) => from.cpu[i]! - cpu0[i]!)
      const stored = await Promise.all(nodes.map(async (x) => {
        let rows = 0
        for (let k = 1; k <= TENANTS; k++) rows += (await x.api.request<Record<string, number>>('GET', `/admin/tenants/demo-care-${k}/rows?since=${since}`))['vital_samples'] ?? 0
        return rows
      }))
      const elapsed = result.elapsedSeconds
      const samples = stored.reduce((a, b) => a + b, 0)
      const perNode: NodeFigures[] = nodes.map((x, i) => ({
        name: x.name, connections: connections[i]!, cpuSeconds: round(cpu[i]!), connectCpuSeconds: round(connectCpu[i]!), steadyCores: round(steadyCpu[i]! / steadySeconds, 2),
        rssMB: { idle: Math.round(idle[i]!), max: Math.round(maxRss[i]!) }, samplesStored: stored[i]!,
      }))
      const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)
      const cores = sum(steadyCpu) / steadySeconds
      const ackedPerSec = result.acked / elapsed
      const marginal = perNode.map((x) => x.connections === 0 ? 0 : (x.rssMB.max - x.rssMB.idle) / (x.connections / 1000))
      return {
        nodes: n,
        seconds: round(elapsed),
        devices: fleet.length,
        connected: result.connected,
        acked: result.acked,
        failed: result.failed,
        ackedPerSec: Math.round(result.acked / elapsed),
        samplesStored: samples,
        samplesExpected: result.expected.vital_samples,
        samplesStoredPerSec: Math.round(samples / elapsed),
        pubackMs: { p50: result.ackLatencyMs.p50, p99: result.ackLatencyMs.p99, max: result.ackLatencyMs.max },
        perNode,
        // what the nodes together used once the fleet was connected: per 1,000 messages/s (the cost that grows
        // with traffic) and per 1,000 devices at this run's rate; connecting the fleet, per 1,000 devices
        steadySeconds: round(steadySeconds),
        nodeCoresSteady: round(cores, 2),
        nodeCoresPer1000MessagesPerSec: round(cores / (ackedPerSec / 1000), 2),
        nodeCoresPer1000Devices: round(cores / (fleet.length / 1000), 3),
        connectCpuSecondsPer1000Devices: round(sum(connectCpu) / (fleet.length / 1000), 1),
        connectSeconds: round(result.connectSeconds),
        rssMBPerNode: Math.round(perNode.reduce((a, x) => a + x.rssMB.max, 0) / n),
        rssMBPer1000Connections: { total: round(perNode.reduce((a, x) => a + x.rssMB.max, 0) / (fleet.length / 1000)), aboveIdle: round(marginal.reduce((a, b) => a + b, 0) / n) },
        simEventLoopDelayMs: result.simEventLoopDelayMs,
      }
    } finally {
      await haproxy.stop()
    }
  } finally {
    for (const x of nodes) await stopNode(x)
    for (const x of nodes) x.dir.remove()
    await redis.stop()
    dir.remove()
  }
}

const missing = ['redis-server', 'haproxy'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status !== 0)
if (missing.length > 0) {
  // npm run bench runs every bench: on a machine without them this one says so instead of failing the lot
  process.stdout.write(JSON.stringify({ bench: 'cluster', ...machine(), skipped: `${missing.join(' and ')} not installed (apt-get install redis-server haproxy)` }) + '\n')
  process.exit(0)
}
const runs: Array<Record<string, unknown>> = []
for (const n of counts) {
  log(`${n} node(s): ${devices} devices, ${seconds} s at ${speed}x`)
  runs.push(await runWith(n))
}
process.stdout.write(JSON.stringify({
  bench: 'cluster',
  ...machine(),
  cores: availableParallelism(),
  load: { devices, tenants: TENANTS, seconds, speed, realDevicesPerDevice: speed, batchMaxAgeMs, storage: 'embedded chDB in each node (no ClickHouse server here)', mix: 'bracelet (through its gateway phone), bracelet, cVitals, cAlarm; one TLS connection each', through: 'haproxy, TCP, PROXY v2, round robin' },
  note: `${availableParallelism()} cores shared by every node, Redis, HAProxy and the simulator: with more nodes than cores the throughput cannot grow here; read the per-node cost per 1,000 devices and connections`,
  runs,
}, null, 2) + '\n')
