/**
 * A load generator in its own process (so it gets its own core): N device
 * connections over TLS, each publishing sealed frames at QoS 1 with a bounded
 * in-flight window, for a fixed time, speaking MQTT 3.1.1 or 5. Input: JSON on stdin; output: JSON.
 *
 * Frames are made and sealed before the clock starts (like wrk sends prepared
 * requests): on this 2-core machine the generator shares the CPU with the node
 * under test, and modelling and sealing thousands of bracelet batches a second
 * cost it most of a core that the node would otherwise get. Every frame is
 * still a distinct message with its own sequence number; a device that runs
 * out of prepared frames stops (reported as `exhausted`, then raise `frames`).
 * Each publish's time to its PUBACK is reported as percentiles (`pubackMs`). With `ratePerDevice`
 * each device sends one message at a time on a fixed schedule (at once when it is behind it) instead
 * of keeping `window` in flight: latency at a given load rather than at saturation.
 */
import mqtt from 'mqtt'
import { createAlarmModel, createBraceletModel, DeviceSealer } from '../devices/index.ts'
import { percentiles } from '../simulators/percentiles.ts'

interface Input {
  port: number
  ca: string
  seconds: number
  window: number
  stream: 'alarm' | 'vitals'
  /** Frames prepared per device. */
  frames: number
  /** First sequence number of each device (a later run continues after an earlier one's, or the node refuses replays). */
  firstSeq?: number
  devices: Array<{ tenant: string; device: string; secret: string; key: string; keyId: number }>
  /** 4 (MQTT 3.1.1, the default) or 5. */
  protocolVersion?: 4 | 5
  /** Messages per second per device, one in flight, on a schedule; unset = `window` in flight, as fast as acknowledged. */
  ratePerDevice?: number
}

const chunks: Buffer[] = []
for await (const c of process.stdin) chunks.push(c as Buffer)
const input = JSON.parse(Buffer.concat(chunks).toString()) as Input
const now = Date.now()
const prepared = input.devices.map((d, i) => {
  const sealer = new DeviceSealer({ tenant: d.tenant, device: d.device, keyId: d.keyId, key: Buffer.from(d.key, 'base64url') }, input.firstSeq ?? 1)
  const alarms = createAlarmModel(i)
  const bracelet = createBraceletModel(i)
  let t = now - input.frames * 60_000 - 3_600_000
  return Array.from({ length: input.frames }, () => {
    const msg = input.stream === 'alarm' ? alarms.next(now - 1000) : bracelet.nextBatch(t += 60_000)
    const { topic, frame } = sealer.seal(input.stream, msg)
    return { topic, frame: Buffer.from(frame) }
  })
})
const clients = await Promise.all(input.devices.map(async (d) => mqtt.connectAsync({
  protocol: 'mqtts', host: '127.0.0.1', port: input.port, ca: input.ca, servername: 'localhost', clientId: d.device, username: d.device, password: d.secret, reconnectPeriod: 0, protocolVersion: input.protocolVersion ?? 4,
})))
let acked = 0
const latencies: number[] = []
/** Devices that ran out of prepared frames before the time was up. */
let exhausted = 0
let stop = false
const startedAt = Date.now()
const started = performance.now()
const cpu0 = process.cpuUsage()
await Promise.all(input.devices.map(async (_d, i) => {
  const c = clients[i]!
  const frames = prepared[i]!
  let next = 0
  let ranOut = false
  const rate = input.ratePerDevice
  // paced devices start spread over one interval, not all at once
  let due = started + (rate === undefined ? 0 : (i / input.devices.length) * 1000 / rate)
  const one = async (): Promise<void> => {
    while (!stop) {
      if (next === frames.length) { if (!ranOut) { ranOut = true; exhausted++ } return }
      if (rate !== undefined) {
        const wait = due - performance.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        due += 1000 / rate
        if (stop) return
      }
      const { topic, frame } = frames[next++]!
      const sent = performance.now()
      await c.publishAsync(topic, frame, { qos: 1 })
      latencies.push(performance.now() - sent)
      acked++
    }
  }
  await Promise.all(Array.from({ length: rate === undefined ? input.window : 1 }, one))
}).concat([new Promise<void>((resolve) => setTimeout(() => { stop = true; resolve() }, input.seconds * 1000))]))
const seconds = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpu0)
/** CPU this process used while publishing, in cores (user + system, all threads). */
const cores = Math.round((cpu.user + cpu.system) / 1e6 / seconds * 100) / 100
await Promise.all(clients.map((c) => c.endAsync(true)))
process.stdout.write(JSON.stringify({ acked, seconds, startedAt, exhausted, cores, pubackMs: percentiles(latencies) }) + '\n')
