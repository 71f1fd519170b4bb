/**
 * Hostile input over real sockets: oversized packets, cross-tenant and
 * cross-device publishes and subscriptions, mutated envelopes, protocol
 * violations. The broker must refuse, count and record each one, and keep
 * serving everyone else.
 */
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { ConsentIndex } from '../src/consent/index.ts'
import { decodeEnvelope } from '../src/decode/index.ts'
import { createIngest, createMetrics, type IngestNode } from '../src/pipeline/index.ts'
import type { StorageWriter } from '../src/storage/index.ts'
import { createAdminClient } from '../src/api/index.ts'
import { createAlarmModel } from '../devices/index.ts'
import { connack, connectPacket, publishPacket, rawSocket, varint } from './support/raw-mqtt.ts'
import { connectTls, count, enrollAndConnect, startTestNode, tempDir, type TestDevice } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let a1: TestDevice, a2: TestDevice, b1: TestDevice
const clients: MqttClient[] = []
const NOW = Date.now()
const alarms = createAlarmModel(1)
const alarm = () => alarms.next(NOW - 60_000)
const rejected = (reason: string): number => node.metrics.rejected[reason] ?? 0

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path, { PUBLISH_RATE: 100_000, PUBLISH_BURST: 1_000_000, AUTH_FREE_FAILURES: 1000 })
  for (const t of ['care-a', 'care-b']) {
    await node.registry.createTenant(t, t)
    await node.registry.createPatient(t, 'p1')
  }
  a1 = await enrollAndConnect(node, 'care-a', 'cal-a1', 'calarm', 'p1')
  a2 = await enrollAndConnect(node, 'care-a', 'cal-a2', 'calarm', 'p1')
  b1 = await enrollAndConnect(node, 'care-b', 'cal-b1', 'calarm', 'p1')
  clients.push(a1.client, a2.client, b1.client)
}, 60_000)

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await node?.close()
  dir?.remove()
})

async function closed (c: MqttClient): Promise<void> {
  if (!c.connected) return
  await new Promise<void>((resolve) => c.once('close', () => { resolve() }))
}

/** Resolves when a socket has closed, whatever error it saw on the way. */
async function socketClosed (s: { closed: boolean; once: (e: 'close', f: () => void) => unknown; on: (e: 'error', f: () => void) => unknown }): Promise<void> {
  s.on('error', () => {})
  if (s.closed) return
  await new Promise<void>((resolve) => { s.once('close', resolve) })
}

describe('oversized packets', () => {
  it('drops 100 connections claiming 200 MB before buffering, while another device keeps publishing', async () => {
    const devices = await Promise.all(Array.from({ length: 50 }, (_, i) => node.registry.enrollDevice({ tenant: 'care-a', device: `big-${i}`, family: 'calarm', patient: null })))
    const sizeBefore = rejected('ING_ERR_SIZE')
    let stop = false
    let acked = 0
    const background = (async () => {
      while (!stop) {
        const { topic, frame } = a2.sealer.seal('alarm', alarm())
        await a2.client.publishAsync(topic, Buffer.from(frame), { qos: 1 })
        acked++
      }
    })()
    global.gc?.()
    const rssBefore = process.memoryUsage().rss
    const claim = varint(200 * 1024 * 1024)
    const filler = Buffer.alloc(1024 * 1024, 0x41)
    const sockets = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const s = await rawSocket(node.mqtt!.port)
      s.on('error', () => {})
      if (i < 50) {
        // a CONNECT claiming 200 MB
        s.write(Buffer.concat([Buffer.from([0x10]), claim]))
      } else {
        // a valid session, then a PUBLISH claiming 200 MB
        const d = devices[i - 50]!
        expect(await connack(s, connectPacket({ clientId: d.device, username: d.device, password: d.secret }))).toBe(0)
        s.write(Buffer.concat([Buffer.from([0x32]), claim]))
      }
      for (let k = 0; k < 4 && !s.destroyed; k++) s.write(filler)
      return s
    }))
    await Promise.all(sockets.map(socketClosed))
    const grown = process.memoryUsage().rss - rssBefore
    const ackedDuringAttack = acked
    await new Promise((resolve) => setTimeout(resolve, 200))
    stop = true
    await background
    expect(rejected('ING_ERR_SIZE') - sizeBefore).toBe(100)
    expect(grown).toBeLessThan(50 * 1024 * 1024)
    expect(ackedDuringAttack).toBeGreaterThan(0)
    expect(acked).toBeGreaterThan(ackedDuringAttack)
    await node.storage.flush()
    expect(await count(node, 'rejected_messages', "reason = 'ING_ERR_SIZE'")).toBe(100)
  }, 60_000)

  it('drops an oversized packet on the TLS listener too', async () => {
    const { connect } = await import('node:tls')
    const s = connect({ host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost' })
    await once(s, 'secureConnect')
    s.on('error', () => {})
    s.write(Buffer.concat([Buffer.from([0x10]), varint(200 * 1024 * 1024), Buffer.alloc(64 * 1024)]))
    await socketClosed(s)
  })
})

describe('protocol violations', () => {
  it('refuses an empty client id with clean=0 (MQTT-3.1.3-8) and a first packet that is not CONNECT', async () => {
    const s = await rawSocket(node.mqtt!.port)
    expect(await connack(s, connectPacket({ clientId: '', username: 'cal-a1', password: a1.enrollment.secret, clean: false }))).toBe(2)
    s.destroy()
    const p = await rawSocket(node.mqtt!.port)
    p.on('error', () => {})
    const before = rejected('ING_ERR_PROTOCOL')
    p.write(publishPacket('v1/care-a/cal-a1/alarm', Buffer.from('x')))
    await socketClosed(p)
    expect(rejected('ING_ERR_PROTOCOL')).toBe(before + 1)
  })
})

describe('isolation of publish and subscribe', () => {
  const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)
  const stream = fc.constantFrom('vitals', 'spot', 'alarm', 'status')
  const foreignTopic = fc.oneof(
    fc.tuple(fc.constantFrom('care-b'), fc.constantFrom('cal-b1', 'cal-a1'), stream).map(([t, d, s]) => `v1/${t}/${d}/${s}`),
    fc.tuple(fc.constantFrom('care-a'), fc.constantFrom('cal-a2', 'cal-b1'), stream).map(([t, d, s]) => `v1/${t}/${d}/${s}`),
    fc.tuple(id, id, stream).filter(([t, d]) => t !== 'care-a' || d !== 'cal-a1').map(([t, d, s]) => `v1/${t}/${d}/${s}`),
    fc.constantFrom('v1/care-a/cal-a1', 'v1/care-a/cal-a1/alarm/x', 'v2/care-a/cal-a1/alarm', 'v1/care-a/cal-a1/cmd', 'v1/care-a/cal-a1/unknown', 'care-a/cal-a1/alarm'),
  )

  it('disconnects a device publishing anywhere but its own tenant and id, and stores nothing', async () => {
    await fc.assert(fc.asyncProperty(foreignTopic, async (topic) => {
      const c = await connectTls(node, 'cal-a1', a1.enrollment.secret)
      clients.push(c)
      const before = await count(node, 'alarm_events', "device_id IN ('cal-a1', 'cal-a2', 'cal-b1')")
      const { frame } = a1.sealer.seal('alarm', alarm())
      c.publish(topic, Buffer.from(frame), { qos: 1 })
      await closed(c)
      await node.storage.flush()
      expect(await count(node, 'alarm_events', "device_id IN ('cal-a1', 'cal-a2', 'cal-b1')")).toBe(before)
    }), { numRuns: 40 })
    // the same device on its own topic is served
    const c = await connectTls(node, 'cal-a1', a1.enrollment.secret)
    clients.push(c)
    const { topic, frame } = a1.sealer.seal('alarm', alarm())
    await c.publishAsync(topic, Buffer.from(frame), { qos: 1 })
    await c.endAsync()
  }, 120_000)

  it('refuses every subscription outside the device\'s own command topic', async () => {
    const filter = fc.oneof(foreignTopic.filter((t) => t !== 'v1/care-a/cal-a1/cmd'), fc.constantFrom('#', '+/#', 'v1/#', 'v1/care-a/#', 'v1/+/+/alarm', 'v1/care-a/cal-a1/alarm', '$SYS/#', 'v1/care-b/alerts'))
    const c = await connectTls(node, 'cal-a1', a1.enrollment.secret)
    clients.push(c)
    await fc.assert(fc.asyncProperty(filter, async (f) => {
      await expect(c.subscribeAsync(f, { qos: 1 })).rejects.toThrow(/Subscribe error/)
    }), { numRuns: 60 })
    expect((await c.subscribeAsync('v1/care-a/cal-a1/cmd', { qos: 1 }))[0]?.qos).toBe(1)
  }, 60_000)
})

describe('mutated envelopes', () => {
  const mutations = fc.array(fc.tuple(fc.constantFrom('flip', 'insert', 'delete', 'truncate'), fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 })
  function mutate (frame: Uint8Array, muts: Array<[string, number, number]>): Buffer {
    let b = Array.from(frame)
    for (const [kind, at, v] of muts) {
      const i = b.length === 0 ? 0 : at % b.length
      if (kind === 'flip') b[i] = b[i]! ^ v
      else if (kind === 'insert') b.splice(i, 0, v)
      else if (kind === 'delete') b.splice(i, 1)
      else b = b.slice(0, i)
    }
    return Buffer.from(b)
  }
  /** Accepting a mutated frame is allowed only if every field the seal covers is unchanged (e.g. an unknown field was added). */
  function sameContent (a: Uint8Array, b: Uint8Array): boolean {
    const x = decodeEnvelope(a)
    const y = decodeEnvelope(b)
    if (!x.ok || !y.ok) return false
    const e = x.value
    const f = y.value
    return e.version === f.version && e.deviceId === f.deviceId && e.seq === f.seq && e.keyId === f.keyId &&
      Buffer.compare(e.nonce, f.nonce) === 0 && Buffer.compare(e.ciphertext, f.ciphertext) === 0
  }

  it('the ingest path accepts no mutated envelope and gives every refusal a reason code', () => {
    const rec = node.registry.device('cal-a1')!
    const sink: StorageWriter = { write: () => Promise.resolve() }
    const ingest = createIngest({ consent: new ConsentIndex(), storage: sink, metrics: createMetrics() })
    const sender = { record: rec, clientId: 'cal-a1', remoteAddress: '' }
    fc.assert(fc.property(mutations, (muts) => {
      const { topic, frame } = a1.sealer.seal('alarm', alarm())
      const bad = mutate(frame, muts)
      const out = ingest.ingest(sender, topic, bad)
      if (out.kind === 'stored') expect(sameContent(frame, bad)).toBe(true)
      else expect(out.reason).toMatch(/^ING_ERR_[A-Z_]+$/)
    }), { numRuns: 3000 })
  })

  it('over a real connection, mutated frames are refused and recorded and the broker keeps serving', async () => {
    const c = await connectTls(node, 'cal-a1', a1.enrollment.secret)
    clients.push(c)
    const before = await count(node, 'alarm_events', "device_id = 'cal-a1'")
    let allowed = 0
    let sent = 0
    await fc.assert(fc.asyncProperty(mutations, async (muts) => {
      const { topic, frame } = a1.sealer.seal('alarm', alarm())
      const bad = mutate(frame, muts)
      if (bad.equals(Buffer.from(frame))) return
      if (sameContent(frame, bad)) allowed++
      sent++
      await c.publishAsync(topic, bad, { qos: 1 })
    }), { numRuns: 150 })
    await node.storage.flush()
    expect(sent).toBeGreaterThan(100)
    expect(await count(node, 'alarm_events', "device_id = 'cal-a1'")).toBe(before + allowed)
    // still served: a clean frame from another tenant's device is stored
    const { topic, frame } = b1.sealer.seal('alarm', alarm())
    await b1.client.publishAsync(topic, Buffer.from(frame), { qos: 1 })
    expect(await count(node, 'alarm_events', "device_id = 'cal-b1'")).toBe(1)
    expect(await count(node, 'rejected_messages', "device_id = 'cal-a1' AND reason LIKE 'ING_ERR_%'")).toBeGreaterThanOrEqual(sent - allowed)
  }, 60_000)

  it('random bytes as payload never take the broker down', async () => {
    const c = await connectTls(node, 'cal-a2', a2.enrollment.secret)
    clients.push(c)
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), async (bytes) => {
      await c.publishAsync('v1/care-a/cal-a2/alarm', Buffer.from(bytes), { qos: 1 })
    }), { numRuns: 100 })
    await c.publishAsync('v1/care-a/cal-a2/alarm', randomBytes(10), { qos: 1 })
    expect(c.connected).toBe(true)
  })
})

describe('security events', () => {
  it('a burst of refusals from one source raises one event its tenant\'s administrator can list, and only that tenant', async () => {
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    const c = await connectTls(node, 'cal-b1', b1.enrollment.secret)
    clients.push(c)
    const before = await api.request<unknown[]>('GET', '/admin/tenants/care-b/security-events')
    expect(before).toEqual([])
    for (let i = 0; i < 25; i++) await c.publishAsync('v1/care-b/cal-b1/alarm', randomBytes(40), { qos: 1 })
    const events = await api.request<Array<{ source: string; refusals: number; reasons: Record<string, number> }>>('GET', '/admin/tenants/care-b/security-events')
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ source: 'cal-b1', refusals: 20 })
    expect(Object.values(events[0]!.reasons).reduce((a, b) => a + b, 0)).toBe(20)
    // care-a's devices misbehaved earlier in this file: their events are care-a's, never care-b's
    const a = await api.request<Array<{ source: string }>>('GET', '/admin/tenants/care-a/security-events')
    expect(a.map((e) => e.source)).toEqual(expect.arrayContaining(['cal-a1', 'cal-a2']))
    expect(a.some((e) => e.source === 'cal-b1')).toBe(false)
    await expect(api.request('GET', '/admin/tenants/care-b/security-events', undefined)).resolves.toHaveLength(1)
  })
})
