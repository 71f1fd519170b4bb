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
import type { MqttClient } from 'mqtt'
import {
  DeviceSealer, createAlarmModel, createBraceletModel, createRng, createSpotModel, createStatusModel, expectedRows,
} from '../devices/index.ts'
import { STREAM_TABLE } from '../src/catalogue/index.ts'
import type { Stream } from '../src/decode/index.ts'
import { inPool, type SimDevice } from './fleet-store.ts'
import { DEFAULT_BEHAVIOUR, type Behaviour, type DataTable, type FleetOptions, type FleetResult, type RunTally } from './fleet-types.ts'
import { createLinks, newLink, type Link } from './links.ts'
import { watchNodeMemory } from './node-memory.ts'
import { connectResponders, pollQueryable } from './observers.ts'
import { percentiles } from './percentiles.ts'

export { DEFAULT_BEHAVIOUR } from './fleet-types.ts'
export type { Behaviour, DataTable, FleetOptions, FleetResult } from './fleet-types.ts'
export { percentiles, type Percentiles } from './percentiles.ts'

const TABLE: Readonly<Record<Stream, DataTable>> = STREAM_TABLE
const MIN = 60_000
const SAMPLE_CAP = 200_000

/** Simulated periods: a bracelet batch per minute, a spot measurement every 10 min, an alarm heartbeat every 5 min, status every 30 min. */
const PERIOD_SIM_MS = { bracelet: MIN, cvitals: 10 * MIN, calarm: 5 * MIN, status: 30 * MIN } as const

/** The alarm latencies of the alarms sent at or after `fromMs`. */
export function sentSince (samples: FleetResult['samples'], fromMs: number): number[] {
  return samples.alarm.filter((_, i) => samples.alarmSentAt[i]! >= fromMs)
}

export async function runFleet (opts: FleetOptions): Promise<FleetResult> {
  const b: Behaviour = { ...DEFAULT_BEHAVIOUR, ...opts.behaviour }
  const tally: RunTally = {
    r: { sent: 0, acked: 0, failed: 0, duplicatesSent: 0, connectFailures: 0, reconnects: 0, gatewayOutages: 0, backfilled: 0 },
    expected: Object.fromEntries(Object.values(TABLE).map((table) => [table, 0])) as Record<DataTable, number>,
    samples: { ack: [], queryable: [], alarm: [], alarmSentAt: [] },
    pubackCodes: {},
    keep: (xs, v) => { if (xs.length < SAMPLE_CAP) xs.push(v) },
    awaitingQuery: new Map(),
    awaitingResponder: new Map(),
  }
  const { r, expected, samples } = tally
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
  const { backOff, connect, pump } = createLinks(opts, b, tally, rng, settled)

  // ── connections ────────────────────────────────────────────────────────
  interface Running { dev: SimDevice; link: Link; sealer: DeviceSealer; skewMs: number; timers: NodeJS.Timeout[] }
  const running: Running[] = []
  // each device comes online at a random moment of the ramp; at most 64 TLS handshakes at once
  const order = opts.fleet.map((dev) => ({ dev, at: realStart + rng.next() * b.rampSeconds * 1000 })).sort((x, y) => x.at - y.at)
  await inPool(order.length, 64, async (i) => {
    const { dev, at } = order[i]!
    if (at > Date.now()) await new Promise((resolve) => setTimeout(resolve, at - Date.now()))
    const via = dev.gateway ?? dev
    const link = newLink(via.device)
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
  const connectedAtMs = Date.now()
  const connectSeconds = (connectedAtMs - realStart) / 1000
  const transport = opts.mtlsPort !== undefined && opts.fleet.every((d) => (d.gateway ?? d).certificate !== undefined) ? 'mutual-tls' : 'tls+password'
  opts.log(`connected ${running.length}/${opts.fleet.length} devices over ${transport} in ${connectSeconds.toFixed(1)} s`)

  // responders: the tenant's alarm centre, measuring alarm → responder
  const responders: MqttClient[] = await connectResponders(opts, tally)
  // what is queryable: the highest stored sequence number per device, polled
  const poller = pollQueryable(opts, tally, seqBase)
  // the node's memory, every 5 s: a soak must show no upward trend
  const memory = watchNodeMemory(opts.api)
  await memory.sample()

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
  memory.stop()
  loop.disable()
  await memory.sample()
  await poller.stop()
  await new Promise((resolve) => setTimeout(resolve, 100))
  // forced: a message still in flight now is counted unsent above, and a graceful end would wait for its PUBACK without bound
  await Promise.all([...running.map((run) => run.link.client?.endAsync(true).catch(() => {})), ...responders.map((c) => c.endAsync(true).catch(() => {}))])

  const loopDelay = { p50: Math.round(loop.percentile(50) / 1e5) / 10, p99: Math.round(loop.percentile(99) / 1e5) / 10, max: Math.round(loop.max / 1e5) / 10 }
  return {
    ...r,
    connected: running.length,
    connectSeconds: Math.round(connectSeconds * 10) / 10,
    connectedAtMs,
    transport,
    mqtt: opts.protocolVersion === 5 ? '5' : '3.1.1',
    pubackCodes: tally.pubackCodes,
    failed: r.failed + unsent,
    expected,
    ackLatencyMs: percentiles(samples.ack),
    queryableLatencyMs: opts.api === undefined ? null : percentiles(samples.queryable),
    alarmToResponderMs: opts.responders === undefined ? null : percentiles(samples.alarm),
    alarmToResponderConnectedMs: opts.responders === undefined ? null : percentiles(sentSince(samples, connectedAtMs)),
    nodeRssMB: memory.trend(),
    nodeCpu: memory.cpu(),
    simEventLoopDelayMs: loopDelay,
    alarmSimEventLoopDelayMs: loopDelay,
    elapsedSeconds,
    samples,
  }
}
