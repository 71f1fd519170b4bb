/**
 * Alarm latency: from a cAlarm device's PUBLISH to delivery at a responder
 * subscribed to v1/{tenant}/alerts, measured idle and while a bracelet fleet
 * streams batches at QoS 1 over TLS, in the same run. Target: p99 ≤ 100 ms.
 * Usage: npx tsx bench/alarm-latency.bench.ts [bracelets=200] [seconds=15]
 */
import mqtt, { type MqttClient } from 'mqtt'
import { startNode } from '../src/pipeline/index.ts'
import { createAlarmModel, createBraceletModel, DeviceSealer } from '../devices/index.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'
import { percentiles } from '../simulators/percentiles.ts'

const bracelets = Number(process.argv[2] ?? 200)
const seconds = Number(process.argv[3] ?? 15)
const dir = tempDir('vf-bench-')
const node = await startNode(testConfig(dir.path, { DEVICE_AUTH_COST: 10, PUBLISH_RATE: 1000, PUBLISH_BURST: 10_000 }))
await node.registry.createTenant('bench', 'bench')
await node.registry.createPatient('bench', 'p')
for (const category of ['vitals', 'sleep', 'activity'] as const) {
  await node.registry.recordConsent({ tenant: 'bench', patient: 'p', purpose: 'care', category, action: 'grant', recordedBy: 'bench', source: 'app', validFromMs: 0 })
}
const connect = async (device: string, secret: string): Promise<MqttClient> => await mqtt.connectAsync({
  protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost', clientId: device, username: device, password: secret, reconnectPeriod: 0,
})
const responderE = await node.registry.enrollDevice({ tenant: 'bench', device: 'responder', family: 'responder', patient: null })
const responder = await connect('responder', responderE.secret)
await responder.subscribeAsync('v1/bench/alerts', { qos: 1 })
const alarmE = await node.registry.enrollDevice({ tenant: 'bench', device: 'cal', family: 'calarm', patient: 'p' })
const alarmClient = await connect('cal', alarmE.secret)
const alarmSealer = new DeviceSealer({ tenant: 'bench', device: 'cal', keyId: 1, key: Buffer.from(alarmE.key, 'base64url') })
const sentAt = new Map<number, number>()
const latencies: number[] = []
responder.on('message', (_t, payload) => {
  const seq = (JSON.parse(payload.toString()) as { seq: number }).seq
  const t = sentAt.get(seq)
  if (t !== undefined) latencies.push(performance.now() - t)
})

async function measureAlarms (ms: number): Promise<Record<string, number>> {
  latencies.length = 0
  const model = createAlarmModel(1, { pressProbability: 0.5, fallProbability: 0.5 })
  const end = Date.now() + ms
  while (Date.now() < end) {
    const ev = model.next(Date.now() - 100)
    if (ev.kind !== 1 && ev.kind !== 2) continue
    const { topic, frame, seq } = alarmSealer.seal('alarm', ev)
    sentAt.set(seq, performance.now())
    alarmClient.publish(topic, Buffer.from(frame), { qos: 1 })
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  const p = percentiles(latencies)
  return { alarms: p.n, p50Ms: p.p50, p99Ms: p.p99, maxMs: p.max }
}

const idle = await measureAlarms(seconds * 1000 / 3)

// load: bracelets each sending a 60 s batch every 100 ms (10x a minute of data per second)
let stop = false
let batches = 0
const fleet = await Promise.all(Array.from({ length: bracelets }, async (_, i) => {
  const e = await node.registry.enrollDevice({ tenant: 'bench', device: `brc-${i}`, family: 'bracelet', patient: 'p' })
  return { c: await connect(e.device, e.secret), s: new DeviceSealer({ tenant: 'bench', device: e.device, keyId: 1, key: Buffer.from(e.key, 'base64url') }), m: createBraceletModel(i) }
}))
const loops = fleet.map(async ({ c, s, m }, i) => {
  let t = Date.now() - 3_600_000 + i
  while (!stop) {
    const f = s.seal('vitals', m.nextBatch(t))
    t += 60_000
    await c.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1 })
    batches++
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
})
const loadStart = Date.now()
const underLoad = await measureAlarms(seconds * 1000)
const loadSeconds = (Date.now() - loadStart) / 1000
stop = true
await Promise.all(loops)
const result = {
  benchmark: 'alarm-latency',
  machine: machine(),
  target: { p99Ms: 100 },
  idle,
  underLoad: { ...underLoad, bracelets, braceletBatchesPerSec: Math.round(batches / loadSeconds), samplesPerSec: Math.round(batches * 66 / loadSeconds) },
}
process.stdout.write(JSON.stringify(result, null, 2) + '\n')
await Promise.all([responder, alarmClient, ...fleet.map((f) => f.c)].map((c) => c.endAsync(true)))
await node.close()
dir.remove()
