/**
 * A device's publish is consumed in authorizePublish and ends with its PUBACK: aedes routes none of
 * them (no retained store, no offline sessions, no message bus), stored or refused, MQTT 3.1.1 or 5,
 * while what the node publishes itself (an alarm notice to responders) is routed as ever. Before,
 * every consumed publish went on through aedes' routing with its payload emptied, to find nobody
 * (about 6 % of the main thread at saturation, bench/RESULTS.md 2026-12-06).
 *
 * Real aedes (the node's createBroker) on a TCP port 0 behind the packet guard, real mqtt.js devices.
 * The one stand-in is the ingest pipeline, a function that answers "stored" or "refused" the way
 * the pipeline does (durable a turn later, or at once): routing is what is under test here, and
 * test/e2e.test.ts runs the whole pipeline with its rows read back.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBroker, GuardedConnection, type IngestOutcome, type VitalflowBroker } from '../src/broker/index.ts'
import type { DeviceRecord, Family } from '../src/registry/index.ts'
import { Reason } from '../src/reasons.ts'
import { deviceId, tenantId } from '../src/ids.ts'

const T = 'care-route'
let broker: VitalflowBroker
let server: Server
let port = 0
const clients: MqttClient[] = []
/** Topics aedes routed: its 'publish' event (after routing) and its message bus. */
const routed: string[] = []
const onBus: string[] = []
const ingested: string[] = []

const record = (device: string, family: Family): DeviceRecord => ({
  tenant: tenantId(T), device: deviceId(device), family, patient: null, bindings: [], gateway: null, secretHash: '', keys: new Map(), revokedAtMs: null,
})

beforeAll(async () => {
  broker = await createBroker({
    authenticate: async (device) => await Promise.resolve(record(device, device.startsWith('resp') ? 'responder' : 'bracelet')),
    ingest: (_sender, topic): IngestOutcome => {
      ingested.push(topic)
      // a refusal is answered at once, inside aedes' parse; a stored message a turn later, as the log commits
      if (topic.endsWith('/status')) return { kind: 'rejected', reason: Reason.decrypt, detail: 'test refusal', disconnect: false }
      return { kind: 'stored', rows: 1, filtered: 0, durable: new Promise<void>((resolve) => { setImmediate(resolve) }) }
    },
    reject: () => {},
    limits: { publishRate: 100_000, publishBurst: 100_000 },
  })
  broker.aedes.on('publish', (packet) => { if (!packet.topic.startsWith('$SYS')) routed.push(packet.topic) })
  const mq = (broker.aedes as unknown as { mq: unknown }).mq as { on: (topic: string, fn: (p: { topic: string }, cb: () => void) => void, done?: () => void) => void }
  await new Promise<void>((resolve) => { mq.on('#', (p, cb) => { if (!p.topic.startsWith('$SYS')) onBus.push(p.topic); cb() }, resolve) })
  server = createServer((socket) => { broker.aedes.handle(new GuardedConnection(socket, { maxPacketBytes: 65_536, maxConnectBytes: 4_096 }, () => { socket.destroy() })) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  port = (server.address() as { port: number }).port
})

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  server?.close()
  await new Promise<void>((resolve) => { if (broker === undefined) resolve(); else broker.aedes.close(() => { resolve() }) })
})

async function connect (device: string, protocolVersion: 4 | 5): Promise<MqttClient> {
  const c = await mqtt.connectAsync({ host: '127.0.0.1', port, clientId: device, username: device, password: 'x', protocolVersion, reconnectPeriod: 0, clean: true })
  clients.push(c)
  return c
}

describe('a consumed publish', () => {
  it('is acknowledged and never routed, stored or refused, by MQTT 3.1.1 and 5 devices with many in flight', async () => {
    const answers: Array<Promise<unknown>> = []
    const sent: string[] = []
    for (const [device, v] of [['band-311', 4], ['band-5', 5]] as const) {
      const c = await connect(device, v)
      // 100 in flight at once: aedes reads a connection's next packet only once the last one is done with,
      // so a publish whose end were lost would hold every one after it
      for (let i = 0; i < 100; i++) {
        const topic = `v1/${T}/${device}/${i % 4 === 0 ? 'status' : 'vitals'}`
        sent.push(topic)
        answers.push(c.publishAsync(topic, Buffer.from([i]), { qos: 1 }))
      }
    }
    const settled = await Promise.allSettled(answers)
    // 3.1.1 acknowledges a refusal too; MQTT 5 answers it with its code, which mqtt.js turns into a rejection
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(100 + 75)
    expect(settled.filter((s) => s.status === 'rejected').map((s) => String(s.reason))).toEqual(Array(25).fill(expect.stringMatching(/Publish error/)))
    expect(ingested.sort()).toEqual([...sent].sort())
    expect(routed).toEqual([])
    expect(onBus).toEqual([])
  })

  it('leaves what the node publishes itself routed: an alarm notice reaches a subscribed responder', async () => {
    const responder = await connect('resp-1', 4)
    expect((await responder.subscribeAsync(`v1/${T}/alerts`, { qos: 1 }))[0]?.qos).toBe(1)
    const got = new Promise<string>((resolve) => { responder.once('message', (_t, payload) => { resolve(payload.toString()) }) })
    broker.aedes.publish({ cmd: 'publish', topic: `v1/${T}/alerts`, payload: Buffer.from('{"kind":"fall_detected"}'), qos: 1, retain: false, dup: false }, () => {})
    expect(await got).toBe('{"kind":"fall_detected"}')
    expect(routed).toEqual([`v1/${T}/alerts`])
    expect(onBus).toEqual([`v1/${T}/alerts`])
  })
})
