/**
 * `npm run sim -- --devices 300 --seconds 30`: a demo fleet against the
 * running node (same VF_* settings as `npm start`). Creates or reuses demo
 * tenants, patients and devices of all three families (bracelets with their
 * gateway phones) and a responder per tenant through the admin API, publishes
 * over TLS at QoS 1, then reads back from ClickHouse what was stored and
 * prints a report; loss must be 0. `--workers N` spreads the fleet over N
 * processes.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { adminClientFor } from '../src/api/index.ts'
import { loadConfig } from '../src/config/index.ts'
import { ensureFleetWithResponders } from './fleet-store.ts'
import { AdminApiError } from '../src/api/index.ts'
import { DEFAULT_BEHAVIOUR, percentiles, runFleet, sentSince, type FleetOptions, type FleetResult } from './fleet.ts'
import { polledHeads } from './observers.ts'
import { buildReport } from './report.ts'
import type { WorkerInput } from './worker.ts'

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '30' },
    tenants: { type: 'string', default: '2' },
    speed: { type: 'string', default: '60' },
    workers: { type: 'string', default: '1' },
    ramp: { type: 'string', default: String(DEFAULT_BEHAVIOUR.rampSeconds) },
    window: { type: 'string', default: String(DEFAULT_BEHAVIOUR.inflightWindow) },
    skew: { type: 'string', default: String(DEFAULT_BEHAVIOUR.clockSkewMs) },
    duplicates: { type: 'string', default: String(DEFAULT_BEHAVIOUR.duplicateRate) },
    outages: { type: 'string', default: String(DEFAULT_BEHAVIOUR.gatewayOutagePerHour) },
    alarms: { type: 'string', default: String(DEFAULT_BEHAVIOUR.alarmProbability) },
    mtls: { type: 'boolean', default: false },
    mqtt5: { type: 'boolean', default: false },
    staff: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help === true) {
  process.stdout.write(`usage: npm run sim -- [--devices 300] [--seconds 30] [--tenants 2] [--speed 60 (simulated s per real s)] [--workers 1]
    [--ramp 2 (s)] [--window 16 (in-flight per connection)] [--skew 90000 (ms)] [--duplicates 0.002] [--outages 0.1 (per gateway per sim hour)] [--alarms 0.02 (share of alarm messages that are presses or falls)]
    [--mtls (devices connect with client certificates on the mutual-TLS listener)] [--mqtt5 (devices speak MQTT 5)] [--json]
    [--staff <password of 12+ characters> (log-ins for the web app on every demo tenant: admin, nurse, alarms)]\n`)
  process.exit(0)
}
const num = (name: string, v: string, min: number, max: number): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) { process.stderr.write(`--${name} must be an integer in ${min}..${max}\n`); process.exit(2) }
  return n
}
const devices = num('devices', values.devices, 1, 100_000)
const seconds = num('seconds', values.seconds, 1, 86_400)
const tenants = num('tenants', values.tenants, 1, 1000)
const speed = num('speed', values.speed, 1, 100_000)
const workers = num('workers', values.workers, 1, 64)
const rate = (name: string, v: string, max: number): number => {
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0 || n > max) { process.stderr.write(`--${name} must be a number in 0..${max}\n`); process.exit(2) }
  return n
}
const behaviour = {
  rampSeconds: rate('ramp', values.ramp, 3600), inflightWindow: num('window', values.window, 1, 1000), clockSkewMs: rate('skew', values.skew, 3_600_000),
  duplicateRate: rate('duplicates', values.duplicates, 1), gatewayOutagePerHour: rate('outages', values.outages, 60),
  alarmProbability: rate('alarms', values.alarms, 1),
}
const log = (s: string): void => { if (!values.json) process.stderr.write(`sim: ${s}\n`) }

/**
 * Runs slices of the fleet in child processes and merges their results. The cAlarm units and the
 * responders run in a process of their own (an alarm is timed from its send to a responder, both in
 * that process), so that a stall of a process publishing thousands of bracelet batches does not show
 * as alarm latency: a real alarm does not share a CPU with 5,000 other devices. Bracelets, their
 * phones and cVitals kits are spread over the other `workers` processes.
 */
async function inWorkers (base: Omit<FleetOptions, 'log' | 'api'>, admin: WorkerInput['admin']): Promise<FleetResult> {
  const bulk = base.fleet.filter((d) => d.family !== 'calarm')
  const slices = [base.fleet.filter((d) => d.family === 'calarm'), ...Array.from({ length: workers }, (_, w) => bulk.filter((_, i) => i % workers === w))]
  const children: ChildProcess[] = []
  const running = Promise.all(slices.map((fleet, w) => new Promise<FleetResult>((resolve, reject) => {
    const child = fork(new URL('./worker.ts', import.meta.url).pathname, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.push(child)
    const input: WorkerInput = { ...base, fleet, admin, pushedHeads: admin !== null, ...(w === 0 && base.responders !== undefined ? { responders: base.responders } : { responders: [] }) }
    child.once('message', (m) => { resolve(m as FleetResult) })
    child.once('exit', (code) => { if (code !== 0) reject(new Error(`worker ${w} exited with ${code}`)) })
    child.send(input)
  })))
  // one poll of what is queryable for all workers, until every worker has reported
  let done = false
  const heads = admin === null
    ? Promise.resolve()
    : polledHeads(api, base.seqBase ?? 0, log).run([...new Set(base.fleet.map((d) => d.tenant))], (rows) => {
        for (const c of children) if (c.connected) c.send({ heads: rows }, () => {}) // a worker that has just exited misses it
      }, () => done)
  const results = await running.finally(() => { done = true })
  await heads
  const sum = (k: keyof FleetResult): number => results.reduce((n, r) => n + (r[k] as number), 0)
  const samples = { ack: results.flatMap((r) => r.samples.ack), queryable: results.flatMap((r) => r.samples.queryable), alarm: results.flatMap((r) => r.samples.alarm), alarmSentAt: results.flatMap((r) => r.samples.alarmSentAt) }
  const expected = { ...results[0]!.expected }
  // once the last worker's devices were all connected: before that, some workers publish while others still connect
  const connectedAtMs = Math.max(...results.map((r) => r.connectedAtMs))
  for (const r of results.slice(1)) for (const [t, n] of Object.entries(r.expected)) expected[t as keyof typeof expected] += n
  return {
    sent: sum('sent'), acked: sum('acked'), failed: sum('failed'), duplicatesSent: sum('duplicatesSent'), connectFailures: sum('connectFailures'),
    connected: sum('connected'), connectSeconds: Math.max(...results.map((r) => r.connectSeconds)), transport: results[0]!.transport, mqtt: results[0]!.mqtt,
    pubackCodes: results.reduce<Record<string, number>>((all, r) => { for (const [k, n] of Object.entries(r.pubackCodes)) all[k] = (all[k] ?? 0) + n; return all }, {}),
    reconnects: sum('reconnects'), gatewayOutages: sum('gatewayOutages'), backfilled: sum('backfilled'), expected,
    ackLatencyMs: percentiles(samples.ack), queryableLatencyMs: admin === null ? null : percentiles(samples.queryable),
    alarmToResponderMs: percentiles(samples.alarm),
    alarmToResponderConnectedMs: percentiles(sentSince(samples, connectedAtMs)),
    connectedAtMs,
    nodeRssMB: results[0]!.nodeRssMB, nodeCpu: results[0]!.nodeCpu,
    simEventLoopDelayMs: { p50: Math.max(...results.map((r) => r.simEventLoopDelayMs.p50)), p99: Math.max(...results.map((r) => r.simEventLoopDelayMs.p99)), max: Math.max(...results.map((r) => r.simEventLoopDelayMs.max)) },
    alarmSimEventLoopDelayMs: results[0]!.simEventLoopDelayMs,
    elapsedSeconds: Math.max(...results.map((r) => r.elapsedSeconds)), samples,
  }
}

const config = loadConfig()
const api = adminClientFor(config)
/** What worker processes need to reach the admin API and /metrics (VF_METRICS_TOKEN, else the admin token). */
function adminTokens (): NonNullable<WorkerInput['admin']> {
  const token = config.ADMIN_TOKEN ?? readFileSync(join(config.DATA_DIR, 'admin-token'), 'utf8').trim()
  return { baseUrl: api.baseUrl, token, metricsToken: config.METRICS_TOKEN ?? token }
}
try {
  const conn = await api.request<{ mqtts: number; mqttsMutual: number | null; caPem: string | null }>('GET', '/admin/connection')
  if (values.mtls && conn.mqttsMutual === null) throw new Error('--mtls: the node runs no mutual-TLS listener (VF_MQTTS_MTLS=false)')
  const before = await api.request<{ rejected: Record<string, number> }>('GET', '/admin/stats')
  const { fleet, responders } = await ensureFleetWithResponders(api, join(config.DATA_DIR, 'sim', 'fleet.json'), { devices, tenants, certificates: values.mtls, log })
  if (values.staff !== undefined) {
    // log-ins for the care web app on every demo tenant: an administrator, a nurse and the alarm centre
    for (let t = 1; t <= tenants; t++) {
      for (const [user, role] of [['admin', 'tenant_admin'], ['nurse', 'clinician'], ['alarms', 'responder']] as const) {
        await api.request('POST', '/admin/users', { tenant: `demo-care-${t}`, user, role, password: values.staff }).catch((err: unknown) => {
          if (!(err instanceof AdminApiError && err.status === 409)) throw err
        })
      }
    }
    log(`web app: ${api.baseUrl}/ — tenant demo-care-1 … demo-care-${tenants}, users admin, nurse, alarms, the --staff password`)
  }
  const since = Date.now()
  log(`publishing for ${seconds} s at ${speed}x simulated time over mqtts://127.0.0.1:${values.mtls ? `${conn.mqttsMutual!} (client certificates)` : conn.mqtts}${workers > 1 ? ` from ${workers} processes and one for the alarm units and responders` : ''}`)
  const base = { host: '127.0.0.1', port: conn.mqtts, ...(values.mtls ? { mtlsPort: conn.mqttsMutual! } : {}), ca: conn.caPem ?? undefined, fleet, responders, seconds, speed, behaviour, seqBase: Date.now() * 1000, protocolVersion: values.mqtt5 ? 5 as const : 4 as const }
  const result = workers === 1
    ? await runFleet({ ...base, api, log })
    : await inWorkers(base, adminTokens())
  const report = await buildReport(api, { fleet, result, since, rejectedBefore: before.rejected, speed })
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  if (report.loss !== 0 || report.duplicates.storedTwice !== 0 || report.messages.acked === 0) process.exitCode = 1
} catch (err) {
  process.stderr.write(`sim: ${(err as Error).message}\n`)
  process.exit(1)
}
