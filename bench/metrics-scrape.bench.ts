/**
 * What a /metrics scrape costs the event loop with many connections open: the node's registry
 * (src/api/prometheus.ts, without the handle-walking defaults) against prom-client's full defaults,
 * scraped in turns in the same process with the same sockets open.
 * The sockets are real TCP connections over loopback, accepted here; their other ends live in a child
 * process so that this one holds one descriptor per connection, as an ingest node does.
 * Prints per registry: scrape wall time and the longest event-loop stall during it (p50/max), in ms.
 * Usage: npx tsx bench/metrics-scrape.bench.ts [connections=10000] [scrapes=20]
 */
import { spawn } from 'node:child_process'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { Registry, collectDefaultMetrics } from 'prom-client'
import { createPrometheus, type MetricsSource } from '../src/api/prometheus.ts'
import { machine } from './harness.ts'

const connections = Number(process.argv[2] ?? 10_000)
const scrapes = Number(process.argv[3] ?? 20)

const accepted: Socket[] = []
const server = createServer((s) => { accepted.push(s); s.on('error', () => {}) })
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 4096, resolve))
const port = (server.address() as AddressInfo).port
const clients = spawn(process.execPath, ['-e',
  `const net=require('net');let n=0;const go=()=>{for(let i=0;i<200&&n<${connections};i++,n++)net.connect(${port},'127.0.0.1').on('error',()=>{});if(n<${connections})setTimeout(go,5)};go()`,
], { stdio: 'ignore' })
const deadline = Date.now() + 120_000
while (accepted.length < connections && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))

const source: MetricsSource = {
  accepted: { vital_samples: 1 }, rejected: {}, unacknowledged: {}, rowsStored: { vital_samples: 1 }, rowsFiltered: 0, securityEvents: 0,
  walBytes: () => 0, walBudgetBytes: 1, notAcknowledging: () => null, queuedRows: () => ({}), connections: () => ({ t1: accepted.length }),
}
const node = createPrometheus(source).registry
const defaults = new Registry()
collectDefaultMetrics({ register: defaults, prefix: 'vitalflow_' })

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!
const round = (x: number): number => Math.round(x * 10) / 10
const results: Record<string, { wallMsP50: number; wallMsMax: number; stallMsP50: number; stallMsMax: number; bytes: number }> = {}
const samples: Record<string, { wall: number[]; stall: number[]; bytes: number }> = { node: { wall: [], stall: [], bytes: 0 }, 'prom-client defaults': { wall: [], stall: [], bytes: 0 } }
const registries = { node, 'prom-client defaults': defaults }
for (let i = 0; i < scrapes; i++) {
  for (const [name, registry] of Object.entries(registries)) {
    // the longest time between two turns of the event loop while the scrape runs: what an alarm waits
    let last = process.hrtime.bigint()
    let stall = 0n
    let ticking = true
    const tick = (): void => {
      const now = process.hrtime.bigint()
      if (now - last > stall) stall = now - last
      last = now
      if (ticking) setImmediate(tick)
    }
    setImmediate(tick)
    const start = process.hrtime.bigint()
    const text = await registry.metrics()
    const wall = Number(process.hrtime.bigint() - start) / 1e6
    await new Promise((resolve) => setImmediate(resolve))
    ticking = false
    samples[name]!.wall.push(wall)
    samples[name]!.stall.push(Number(stall) / 1e6)
    samples[name]!.bytes = text.length
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
for (const [name, s] of Object.entries(samples)) {
  results[name] = { wallMsP50: round(percentile(s.wall, 0.5)), wallMsMax: round(Math.max(...s.wall)), stallMsP50: round(percentile(s.stall, 0.5)), stallMsMax: round(Math.max(...s.stall)), bytes: s.bytes }
}
console.log(JSON.stringify({
  bench: 'metrics-scrape', machine: machine(), connections: accepted.length, scrapes, results,
  stallRatio: round(results['prom-client defaults']!.stallMsP50 / Math.max(0.1, results['node']!.stallMsP50)),
}, null, 2))
clients.kill()
for (const s of accepted) s.destroy()
server.close()
