/**
 * A load generator in its own process (so it gets its own core): N device
 * connections over TLS, each publishing sealed frames at QoS 1 with a bounded
 * in-flight window, for a fixed time. Input: JSON on stdin; output: JSON.
 */
import mqtt from 'mqtt'
import { createAlarmModel, createBraceletModel, DeviceSealer } from '../devices/index.ts'

interface Input {
  port: number
  ca: string
  seconds: number
  window: number
  stream: 'alarm' | 'vitals'
  devices: Array<{ tenant: string; device: string; secret: string; key: string; keyId: number }>
}

const chunks: Buffer[] = []
for await (const c of process.stdin) chunks.push(c as Buffer)
const input = JSON.parse(Buffer.concat(chunks).toString()) as Input
let acked = 0
let stop = false
const now = Date.now()
const clients = await Promise.all(input.devices.map(async (d) => mqtt.connectAsync({
  protocol: 'mqtts', host: '127.0.0.1', port: input.port, ca: input.ca, servername: 'localhost', clientId: d.device, username: d.device, password: d.secret, reconnectPeriod: 0,
})))
const started = performance.now()
await Promise.all(input.devices.map(async (d, i) => {
  const c = clients[i]!
  const sealer = new DeviceSealer({ tenant: d.tenant, device: d.device, keyId: d.keyId, key: Buffer.from(d.key, 'base64url') }, 1)
  const alarms = createAlarmModel(i)
  const bracelet = createBraceletModel(i)
  let t = now - 20 * 3_600_000
  const one = async (): Promise<void> => {
    while (!stop) {
      const msg = input.stream === 'alarm' ? alarms.next(now - 1000) : bracelet.nextBatch(t += 60_000)
      const { topic, frame } = sealer.seal(input.stream, msg as never)
      await c.publishAsync(topic, Buffer.from(frame), { qos: 1 })
      acked++
    }
  }
  await Promise.all(Array.from({ length: input.window }, one))
}).concat([new Promise<void>((resolve) => setTimeout(() => { stop = true; resolve() }, input.seconds * 1000))]))
const seconds = (performance.now() - started) / 1000
await Promise.all(clients.map((c) => c.endAsync(true)))
process.stdout.write(JSON.stringify({ acked, seconds }) + '\n')
