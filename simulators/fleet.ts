/**
 * Runs a fleet of virtual devices against an ingest node: one MQTT/TLS
 * connection and identity per device, QoS 1, a time-compressed clock, and the
 * signal models in devices/. Counts what was sent and acknowledged, and what
 * each acknowledged message must have produced in storage.
 */
import mqtt, { type MqttClient } from 'mqtt'
import {
  DeviceSealer, createAlarmModel, createBraceletModel, createSpotModel, createStatusModel, expectedRows,
} from '../devices/index.ts'
import type { Stream } from '../src/decode/index.ts'
import type { TelemetryTable } from '../src/storage/index.ts'
import { inPool, type SimDevice } from './fleet-store.ts'

export interface FleetOptions {
  host: string
  port: number
  ca: string | undefined
  fleet: SimDevice[]
  seconds: number
  /** Simulated seconds per real second. */
  speed: number
  log: (s: string) => void
}

export interface FleetResult {
  sent: number
  acked: number
  failed: number
  connectFailures: number
  /** Rows the acknowledged messages must have produced, per table. */
  expected: Record<DataTable, number>
  ackLatencyMs: { p50: number; p99: number; max: number }
  elapsedSeconds: number
}

export type DataTable = TelemetryTable
const TABLE: Record<Stream, DataTable> = { vitals: 'vital_samples', spot: 'spot_measurements', alarm: 'alarm_events', status: 'device_status' }
const MIN = 60_000

/** Simulated periods: a bracelet batch per minute, a spot measurement every 10 min, an alarm heartbeat every 5 min, status every 30 min. */
const PERIOD_SIM_MS = { bracelet: MIN, cvitals: 10 * MIN, calarm: 5 * MIN, status: 30 * MIN } as const

interface Running {
  dev: SimDevice
  client: MqttClient
  sealer: DeviceSealer
  timers: NodeJS.Timeout[]
}

export async function runFleet (opts: FleetOptions): Promise<FleetResult> {
  const expected: Record<DataTable, number> = { vital_samples: 0, spot_measurements: 0, alarm_events: 0, device_status: 0 }
  const latencies: number[] = []
  let sent = 0; let acked = 0; let failed = 0; let connectFailures = 0
  const inflight = new Set<Promise<void>>()
  // the simulated clock ends at "now": data is in the past, as a gateway's backlog would be
  const realStart = Date.now()
  const simStart = realStart - opts.seconds * opts.speed * 1000
  const simNow = (): number => simStart + (Date.now() - realStart) * opts.speed
  const seqBase = Date.now() * 1000 // above any earlier run's sequence numbers

  const running: Running[] = []
  await inPool(opts.fleet.length, 32, async (i) => {
    const dev = opts.fleet[i]!
    try {
      const client = await mqtt.connectAsync({
        protocol: 'mqtts', host: opts.host, port: opts.port, ca: opts.ca, servername: 'localhost',
        clientId: dev.device, username: dev.device, password: dev.secret, clean: true, reconnectPeriod: 1000, connectTimeout: 10_000,
      })
      const sealer = new DeviceSealer({ tenant: dev.tenant, device: dev.device, keyId: dev.keyId, key: Buffer.from(dev.key, 'base64url') }, seqBase)
      running.push({ dev, client, sealer, timers: [] })
    } catch {
      connectFailures++
    }
  })
  opts.log(`connected ${running.length}/${opts.fleet.length} devices over TLS in ${((Date.now() - realStart) / 1000).toFixed(1)} s`)

  const t0 = Date.now()
  function send (r: Running, stream: Stream, msg: never, rows: number): void {
    const { topic, frame } = r.sealer.seal(stream, msg)
    const started = performance.now()
    sent++
    const p = r.client.publishAsync(topic, Buffer.from(frame), { qos: 1 }).then(() => {
      acked++
      expected[TABLE[stream]] += rows
      latencies.push(performance.now() - started)
    }, () => { failed++ }).finally(() => { inflight.delete(p) })
    inflight.add(p)
  }

  function every (r: Running, simPeriodMs: number, seed: number, tick: () => void): void {
    const realPeriod = Math.max(5, simPeriodMs / opts.speed)
    const first = setTimeout(() => {
      tick()
      r.timers.push(setInterval(tick, realPeriod))
    }, (seed % 1000) / 1000 * realPeriod)
    r.timers.push(first)
  }

  for (const [i, r] of running.entries()) {
    const seed = i * 7919 + 17
    const { family, consent } = r.dev
    if (family === 'bracelet') {
      const model = createBraceletModel(seed)
      let windowStart = simNow() - MIN
      every(r, PERIOD_SIM_MS.bracelet, seed, () => {
        const msg = model.nextBatch(windowStart, MIN)
        windowStart += MIN
        send(r, 'vitals', msg as never, consent ? expectedRows('vitals', msg) : 1 /* battery only: diagnostics */)
      })
    } else if (family === 'cvitals') {
      const model = createSpotModel(seed)
      every(r, PERIOD_SIM_MS.cvitals, seed, () => { send(r, 'spot', model.next(simNow()) as never, consent ? 1 : 0) })
    } else {
      const model = createAlarmModel(seed)
      every(r, PERIOD_SIM_MS.calarm, seed, () => { send(r, 'alarm', model.next(simNow()) as never, 1) })
    }
    const status = createStatusModel(seed, family)
    every(r, PERIOD_SIM_MS.status, seed + 1, () => { send(r, 'status', status.next(simNow()) as never, 1) })
  }

  await new Promise((resolve) => setTimeout(resolve, opts.seconds * 1000))
  for (const r of running) for (const t of r.timers) clearTimeout(t)
  const elapsedSeconds = (Date.now() - t0) / 1000
  const deadline = Date.now() + 30_000
  while (inflight.size > 0 && Date.now() < deadline) await Promise.race([...inflight, new Promise((resolve) => setTimeout(resolve, 1000))])
  await Promise.all(running.map((r) => r.client.endAsync().catch(() => {})))

  latencies.sort((a, b) => a - b)
  const pct = (q: number): number => latencies.length === 0 ? 0 : Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 10) / 10
  return {
    sent, acked, failed: failed + inflight.size, connectFailures, expected,
    ackLatencyMs: { p50: pct(0.5), p99: pct(0.99), max: pct(1) }, elapsedSeconds,
  }
}
