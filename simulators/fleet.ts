/**
 * Runs a fleet of virtual devices against an ingest node, the way real ones
 * behave: each device its own identity and MQTT/TLS connection (bracelets
 * through their patient's gateway phone), a connection ramp with jitter,
 * reconnects with exponential back-off, QoS 1 with a bounded in-flight window
 * per connection, device clocks that drift, gateways that go offline and come
 * back with a backfill burst, and duplicate resends. Time is compressed: a
 * simulated minute passes in 60/speed real seconds.
 *
 * It counts what was offered and acknowledged, what the acknowledged messages
 * must have produced in storage, and measures three latencies: PUBACK, device
 * send → queryable in ClickHouse (polling the highest stored sequence number
 * per device), and alarm → responder (a responder identity subscribed to the
 * tenant's alerts).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import mqtt, { type MqttClient } from 'mqtt'
import {
  DeviceSealer, createAlarmModel, createBraceletModel, createRng, createSpotModel, createStatusModel, expectedRows,
} from '../devices/index.ts'
import type { AdminClient } from '../src/api/index.ts'
import { STREAM_TABLE } from '../src/catalogue/index.ts'
import type { Stream } from '../src/decode/index.ts'
import type { TelemetryTable } from '../src/storage/index.ts'
import { backoffMs, type Backoff } from '../src/backoff.ts'
import { inPool, type SimCertificate, type SimDevice, type SimResponder } from './fleet-store.ts'
import { percentiles, type Percentiles } from './percentiles.ts'

export { percentiles, type Percentiles } from './percentiles.ts'

export interface Behaviour {
  /** Connections are opened over this many seconds, each at a random moment. */
  rampSeconds: number
  /** Unacknowledged QoS 1 messages per connection; more wait in the device's queue. */
  inflightWindow: number
  /** Each device's clock is off by up to ± this many ms. */
  clockSkewMs: number
  /** Probability that a device resends a message it already had acknowledged (same sequence number). */
  duplicateRate: number
  /** Probability per simulated hour that a gateway phone goes offline, and for how many simulated minutes. */
  gatewayOutagePerHour: number
  gatewayOutageMinutes: number
  /** Probability that an alarm unit's message is a button press or a fall (else a heartbeat). */
  alarmProbability: number
}

export const DEFAULT_BEHAVIOUR: Behaviour = {
  rampSeconds: 2, inflightWindow: 16, clockSkewMs: 90_000, duplicateRate: 0.002, gatewayOutagePerHour: 0.1, gatewayOutageMinutes: 20, alarmProbability: 0.02,
}

export interface FleetOptions {
  host: string
  port: number
  /** The node's mutual-TLS port: identities with a client certificate connect there, with no password (and no scrypt). */
  mtlsPort?: number
  ca: string | undefined
  fleet: SimDevice[]
  /** Responder identities (one per tenant) for the alarm → responder latency; optional. */
  responders?: SimResponder[]
  /** The admin API, for polling what is queryable; without it, device → queryable latency is not measured. */
  api?: AdminClient
  seconds: number
  /** Simulated seconds per real second. */
  speed: number
  behaviour?: Partial<Behaviour>
  /** Sequence numbers start above this (distinct per run and per worker). */
  seqBase?: number
  log: (s: string) => void
}

export interface FleetResult {
  sent: number
  acked: number
  failed: number
  duplicatesSent: number
  connectFailures: number
  /** Device connections open after the ramp, and how long the ramp took (TLS handshakes and authentication). */
  connected: number
  connectSeconds: number
  transport: 'tls+password' | 'mutual-tls'
  reconnects: number
  gatewayOutages: number
  backfilled: number
  /** Rows the acknowledged messages must have produced, per table. */
  expected: Record<DataTable, number>
  ackLatencyMs: Percentiles
  /** Device send → the message's rows are queryable (resolution: the poll interval). */
  queryableLatencyMs: Percentiles | null
  alarmToResponderMs: Percentiles | null
  /** The node's resident memory over the run (from its /metrics), when the admin API is given. */
  nodeRssMB: {
    first: number; max: number; last: number
    /** least-squares slope over the run, and over its second half (after warm-up) */
    mbPerMinute: number; secondHalfMbPerMinute: number
    /** RSS at each whole minute of the run */
    byMinute: number[]
    samples: number
  } | null
  /**
   * The simulator's own event-loop delay while it published. Every latency above is measured
   * from this process: when this is high, the load generator, not the node, sets the tail.
   */
  simEventLoopDelayMs: { p50: number; p99: number; max: number }
  elapsedSeconds: number
  /** Raw latency samples (capped), so workers' results can be merged. */
  samples: { ack: number[]; queryable: number[]; alarm: number[] }
}

export type DataTable = TelemetryTable
const TABLE: Readonly<Record<Stream, DataTable>> = STREAM_TABLE
const MIN = 60_000
const POLL_MS = 200
const SAMPLE_CAP = 200_000
const RECONNECT: Backoff = { baseMs: 2000, maxMs: 30_000 }

/** Simulated periods: a bracelet batch per minute, a spot measurement every 10 min, an alarm heartbeat every 5 min, status every 30 min. */
const PERIOD_SIM_MS = { bracelet: MIN, cvitals: 10 * MIN, calarm: 5 * MIN, status: 30 * MIN } as const

interface Frame { topic: string; frame: Buffer; seq: number; table: DataTable; rows: number; alarm: boolean }

/** One MQTT connection: a device's own, or a gateway phone's carrying its bracelet. */
interface Link {
  id: string
  client: MqttClient | null
  inflight: number
  /** Frames published and not yet acknowledged: resent after the connection is replaced. */
  unacked: Set<Frame>
  /** Bumped when the connection is replaced; answers for an older connection are ignored. */
  generation: number
  queue: Frame[]
  offline: boolean
  /** Failed connection attempts since the last successful one. */
  failures: number
}

export async function runFleet (opts: FleetOptions): Promise<FleetResult> {
  const b: Behaviour = { ...DEFAULT_BEHAVIOUR, ...opts.behaviour }
  const expected = Object.fromEntries(Object.values(TABLE).map((table) => [table, 0])) as Record<DataTable, number>
  const samples = { ack: [] as number[], queryable: [] as number[], alarm: [] as number[] }
  const keep = (xs: number[], v: number): void => { if (xs.length < SAMPLE_CAP) xs.push(v) }
  const r = { sent: 0, acked: 0, failed: 0, duplicatesSent: 0, connectFailures: 0, reconnects: 0, gatewayOutages: 0, backfilled: 0 }
  const rng = createRng(opts.fleet.length * 31 + (opts.seqBase ?? 0) % 1000)
  // the simulated clock ends at "now": data is in the past, as a gateway's backlog would be
  const realStart = Date.now()
  const simStart = realStart - opts.seconds * opts.speed * 1000
  const simNow = (): number => simStart + (Date.now() - realStart) * opts.speed
  const seqBase = opts.seqBase ?? Date.now() * 1000 // above any earlier run's sequence numbers
  /** Set once the run has drained: gateways still offline stop trying to come back. */
  let stopped = false
  const idle = new Set<() => void>()
  const settled = (): void => { for (const f of idle) f() }
  /** device → sequence numbers acknowledged but not yet seen queryable, with their send time. */
  const awaitingQuery = new Map<string, Array<{ seq: number; at: number }>>()
  /** `${device}/${seq}` → send time of alarms that reach responders. */
  const awaitingResponder = new Map<string, number>()

  /** Counts a failed attempt and returns the next wait: 2 s doubling up to 30 s, with jitter. */
  function backOff (link: Link): number {
    link.failures++
    return backoffMs(link.failures, RECONNECT, () => rng.next())
  }

  /** The identity's own credential: its client certificate on the mutual-TLS port when it has one (and the port is given), else its secret. */
  function connect (link: Link, via: { device: string; secret: string; certificate?: SimCertificate }): Promise<MqttClient> {
    const credential = opts.mtlsPort !== undefined && via.certificate !== undefined
      ? { port: opts.mtlsPort, cert: via.certificate.certPem, key: via.certificate.keyPem }
      : { port: opts.port, username: via.device, password: via.secret }
    return mqtt.connectAsync({
      protocol: 'mqtts', host: opts.host, ca: opts.ca, servername: 'localhost',
      clientId: link.id, ...credential, clean: true, reconnectPeriod: 1000, connectTimeout: 10_000,
    }).then((client) => {
      // exponential back-off with jitter, reset once connected again
      client.on('close', () => {
        if (link.offline) return
        client.options.reconnectPeriod = backOff(link)
      })
      client.on('connect', () => { if (link.failures > 0) r.reconnects++; link.failures = 0 })
      link.failures = 0
      return client
    })
  }

  function pump (link: Link): void {
    while (link.client !== null && !link.offline && link.inflight < b.inflightWindow && link.queue.length > 0) {
      const f = link.queue.shift()!
      link.inflight++
      link.unacked.add(f)
      const generation = link.generation
      const started = performance.now()
      const sentAt = Date.now()
      if (f.alarm) awaitingResponder.set(`${f.topic.split('/')[2]!}/${f.seq}`, sentAt)
      link.client.publishAsync(f.topic, f.frame, { qos: 1 }).then(() => {
        if (generation !== link.generation) return
        link.unacked.delete(f)
        r.acked++
        expected[f.table] += f.rows
        keep(samples.ack, performance.now() - started)
        const device = f.topic.split('/')[2]!
        if (opts.api !== undefined && f.rows > 0) {
          let list = awaitingQuery.get(device)
          if (list === undefined) awaitingQuery.set(device, list = [])
          list.push({ seq: f.seq, at: sentAt })
        }
        // now and then a device did not see the PUBACK in time and resends: same frame, same sequence number
        if (b.duplicateRate > 0 && rng.chance(b.duplicateRate)) {
          r.duplicatesSent++
          void link.client?.publishAsync(f.topic, f.frame, { qos: 1, dup: true }).catch(() => {})
        }
      }, () => { if (generation === link.generation) { link.unacked.delete(f); r.failed++ } }).finally(() => {
        if (generation !== link.generation) return
        link.inflight--
        pump(link)
        settled()
      })
    }
  }

  // ── connections ────────────────────────────────────────────────────────
  interface Running { dev: SimDevice; link: Link; sealer: DeviceSealer; skewMs: number; timers: NodeJS.Timeout[] }
  const running: Running[] = []
  // each device comes online at a random moment of the ramp; at most 64 TLS handshakes at once
  const order = opts.fleet.map((dev) => ({ dev, at: realStart + rng.next() * b.rampSeconds * 1000 })).sort((x, y) => x.at - y.at)
  await inPool(order.length, 64, async (i) => {
    const { dev, at } = order[i]!
    if (at > Date.now()) await new Promise((resolve) => setTimeout(resolve, at - Date.now()))
    const via = dev.gateway ?? dev
    const link: Link = { id: via.device, client: null, inflight: 0, unacked: new Set(), generation: 0, queue: [], offline: false, failures: 0 }
    // a refused attempt is counted and tried again with back-off, three attempts in all
    for (let attempt = 1; link.client === null && attempt <= 3; attempt++) {
      link.client = await connect(link, via).catch(async () => {
        r.connectFailures++
        if (attempt < 3) await new Promise((resolve) => setTimeout(resolve, backOff(link)))
        return null
      })
    }
    if (link.client !== null) {
      const sealer = new DeviceSealer({ tenant: dev.tenant, device: dev.device, keyId: dev.keyId, key: Buffer.from(dev.key, 'base64url') }, seqBase)
      running.push({ dev, link, sealer, skewMs: Math.round((rng.next() * 2 - 1) * b.clockSkewMs), timers: [] })
    }
  })
  const connectSeconds = (Date.now() - realStart) / 1000
  const transport = opts.mtlsPort !== undefined && opts.fleet.every((d) => (d.gateway ?? d).certificate !== undefined) ? 'mutual-tls' : 'tls+password'
  opts.log(`connected ${running.length}/${opts.fleet.length} devices over ${transport} in ${connectSeconds.toFixed(1)} s`)

  // responders: the tenant's alarm centre, measuring alarm → responder
  const responders: MqttClient[] = []
  for (const resp of opts.responders ?? []) {
    try {
      const c = await mqtt.connectAsync({ protocol: 'mqtts', host: opts.host, port: opts.port, ca: opts.ca, servername: 'localhost', clientId: resp.device, username: resp.device, password: resp.secret, clean: true, reconnectPeriod: 1000 })
      await c.subscribeAsync(`v1/${resp.tenant}/alerts`, { qos: 1 })
      c.on('message', (_topic, payload) => {
        const a = JSON.parse(payload.toString()) as { device: string; seq: number }
        const at = awaitingResponder.get(`${a.device}/${a.seq}`)
        if (at !== undefined) { keep(samples.alarm, Date.now() - at); awaitingResponder.delete(`${a.device}/${a.seq}`) }
      })
      responders.push(c)
    } catch {
      r.connectFailures++
    }
  }

  // what is queryable: the highest stored sequence number per device, polled
  let polling = true
  let stoppedAt = 0
  const tenants = [...new Set(opts.fleet.map((d) => d.tenant))]
  const poller = (async () => {
    if (opts.api === undefined) return
    while (polling || [...awaitingQuery.values()].some((l) => l.length > 0)) {
      const pollStart = Date.now()
      for (const t of tenants) {
        const rows = await opts.api.request<Array<{ device: string; seq: number }>>('GET', `/admin/tenants/${t}/sequences?since=${seqBase}`).catch((e: unknown) => { opts.log(`polling stored sequences: ${(e as Error).message}`); return [] })
        const now = Date.now()
        for (const { device, seq } of rows) {
          const list = awaitingQuery.get(device)
          if (list === undefined) continue
          let k = 0
          while (k < list.length && list[k]!.seq <= seq) keep(samples.queryable, now - list[k++]!.at)
          if (k > 0) list.splice(0, k)
        }
      }
      // what has not shown up 10 s after the end will not: stop waiting (it counts as loss in the report)
      if (!polling && Date.now() - stoppedAt > 10_000) break
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, POLL_MS - (Date.now() - pollStart))))
    }
  })()

  // the node's memory, every 5 s: a soak must show no upward trend
  const rss: Array<[number, number]> = []
  const sampleRss = async (): Promise<void> => {
    if (opts.api === undefined) return
    const text = await opts.api.metrics().catch(() => '')
    const m = /^vitalflow_process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text)
    if (m !== null) rss.push([Date.now(), Number(m[1]) / 1048576])
  }
  await sampleRss()
  const rssTimer = setInterval(() => { void sampleRss() }, 5000)

  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()

  // ── behaviour ──────────────────────────────────────────────────────────
  const t0 = Date.now()
  function send (run: Running, stream: Stream, msg: never, rows: number, alarm = false): void {
    const s = run.sealer.seal(stream, msg)
    r.sent++
    run.link.queue.push({ topic: s.topic, frame: Buffer.from(s.frame), seq: s.seq, table: TABLE[stream], rows, alarm })
    if (run.link.offline) r.backfilled++
    pump(run.link)
  }

  function every (run: Running, simPeriodMs: number, seed: number, tick: () => void): void {
    const realPeriod = Math.max(5, simPeriodMs / opts.speed)
    const first = setTimeout(() => {
      tick()
      run.timers.push(setInterval(tick, realPeriod))
    }, (seed % 1000) / 1000 * realPeriod)
    run.timers.push(first)
  }

  /** The gateway phone drops off the network; the bracelet keeps measuring; on return the backlog goes out as a burst. */
  function outage (run: Running): void {
    const link = run.link
    if (link.offline || link.client === null) return
    r.gatewayOutages++
    link.offline = true
    const client = link.client
    link.client = null
    // what was in flight was never acknowledged: it goes out again, first, once the phone is back
    link.generation++
    link.queue.unshift(...link.unacked)
    link.unacked.clear()
    link.inflight = 0
    void client.endAsync(true).catch(() => {})
    // a phone back on the network keeps trying until the broker takes it: every refused
    // attempt is counted and retried with back-off; the backlog waits in the queue
    const reconnect = (): void => {
      connect(link, run.dev.gateway!).then((c) => {
        if (stopped) { void c.endAsync(true).catch(() => {}); return }
        link.client = c
        link.offline = false
        pump(link)
      }, () => {
        r.connectFailures++
        if (!stopped) setTimeout(reconnect, backOff(link))
      })
    }
    setTimeout(reconnect, b.gatewayOutageMinutes * MIN / opts.speed)
  }

  for (const [i, run] of running.entries()) {
    const seed = i * 7919 + 17
    const { family, consent } = run.dev
    const clock = (): number => simNow() + run.skewMs
    if (family === 'bracelet') {
      const model = createBraceletModel(seed)
      let windowStart = clock() - MIN
      const outagePerTick = b.gatewayOutagePerHour / 60
      every(run, PERIOD_SIM_MS.bracelet, seed, () => {
        const msg = model.nextBatch(windowStart, MIN)
        windowStart += MIN
        send(run, 'vitals', msg as never, consent ? expectedRows('vitals', msg) : 1 /* battery only: diagnostics */)
        if (run.dev.gateway !== undefined && rng.chance(outagePerTick)) outage(run)
      })
    } else if (family === 'cvitals') {
      const model = createSpotModel(seed)
      every(run, PERIOD_SIM_MS.cvitals, seed, () => { send(run, 'spot', model.next(clock()) as never, consent ? 1 : 0) })
    } else {
      const model = createAlarmModel(seed, { pressProbability: b.alarmProbability / 2, fallProbability: b.alarmProbability / 2 })
      every(run, PERIOD_SIM_MS.calarm, seed, () => {
        const a = model.next(clock())
        send(run, 'alarm', a as never, 1, a.kind === 1 || a.kind === 2)
      })
    }
    const status = createStatusModel(seed, family === 'gateway' || family === 'responder' ? 'bracelet' : family)
    every(run, PERIOD_SIM_MS.status, seed + 1, () => { send(run, 'status', status.next(clock()) as never, 1) })
  }

  await new Promise((resolve) => setTimeout(resolve, opts.seconds * 1000))
  for (const run of running) for (const t of run.timers) clearTimeout(t)
  const elapsedSeconds = (Date.now() - t0) / 1000
  // let queues, backlogs of gateways still offline and in-flight messages drain
  const deadline = Date.now() + 30_000 + b.gatewayOutageMinutes * MIN / opts.speed
  const busy = (): boolean => running.some((run) => run.link.inflight > 0 || run.link.queue.length > 0)
  while (busy() && Date.now() < deadline) await new Promise<void>((resolve) => { idle.add(resolve); setTimeout(() => { idle.delete(resolve); resolve() }, 250) })
  stopped = true
  const unsent = running.reduce((n, run) => n + run.link.queue.length + run.link.inflight, 0)
  clearInterval(rssTimer)
  loop.disable()
  await sampleRss()
  polling = false
  stoppedAt = Date.now()
  await poller
  await new Promise((resolve) => setTimeout(resolve, 100))
  await Promise.all([...running.map((run) => run.link.client?.endAsync().catch(() => {})), ...responders.map((c) => c.endAsync().catch(() => {}))])

  return {
    ...r,
    connected: running.length,
    connectSeconds: Math.round(connectSeconds * 10) / 10,
    transport,
    failed: r.failed + unsent,
    expected,
    ackLatencyMs: percentiles(samples.ack),
    queryableLatencyMs: opts.api === undefined ? null : percentiles(samples.queryable),
    alarmToResponderMs: opts.responders === undefined ? null : percentiles(samples.alarm),
    nodeRssMB: rssTrend(rss),
    simEventLoopDelayMs: { p50: Math.round(loop.percentile(50) / 1e5) / 10, p99: Math.round(loop.percentile(99) / 1e5) / 10, max: Math.round(loop.max / 1e5) / 10 },
    elapsedSeconds,
    samples,
  }
}

function rssTrend (xs: Array<[number, number]>): FleetResult['nodeRssMB'] {
  if (xs.length === 0) return null
  const n = xs.length
  const r = (v: number): number => Math.round(v * 10) / 10
  const byMinute: number[] = []
  for (const [t, v] of xs) if (t - xs[0]![0] >= byMinute.length * 60_000) byMinute.push(r(v))
  return {
    first: r(xs[0]![1]), max: r(Math.max(...xs.map(([, v]) => v))), last: r(xs[n - 1]![1]),
    mbPerMinute: r(slope(xs) * 60_000), secondHalfMbPerMinute: r(slope(xs.slice(Math.floor(n / 2))) * 60_000), byMinute, samples: n,
  }
}

/** Least-squares slope of v over t. */
function slope (xs: Array<[number, number]>): number {
  const n = xs.length
  if (n < 2) return 0
  const mx = xs.reduce((a, [t]) => a + t, 0) / n
  const my = xs.reduce((a, [, v]) => a + v, 0) / n
  const sxx = xs.reduce((a, [t]) => a + (t - mx) ** 2, 0)
  return sxx === 0 ? 0 : xs.reduce((a, [t, v]) => a + (t - mx) * (v - my), 0) / sxx
}
