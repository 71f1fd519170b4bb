/**
 * MQTT 3.1.1 on the wire, byte for byte. Every expected byte string here was
 * recorded against aedes 1.2.0 (the commit that adds this file passes on it)
 * and must stay the same on the aedes the node runs now: a 3.1.1 device sees
 * no difference from the move to aedes 2 (MQTT 5). Raw sockets, so nothing a
 * client library does hides a changed byte.
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DeviceSealer, createAlarmModel } from '../devices/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { connectPacket, publishPacket, rawSocket, varint } from './support/raw-mqtt.ts'
import { count, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let dev: Enrollment
let responder: Enrollment
let sealer: DeviceSealer
const alarms = createAlarmModel(7)
const NOW = Date.now()

beforeAll(async () => {
  dir = tempDir('vf-wire-')
  node = await startTestNode(dir.path, { AUTH_FREE_FAILURES: 2 })
  await node.registry.createTenant('care-w', 'W')
  await node.registry.createPatient('care-w', 'p1')
  dev = await node.registry.enrollDevice({ tenant: 'care-w', device: 'cal-w1', family: 'calarm', patient: 'p1' })
  responder = await node.registry.enrollDevice({ tenant: 'care-w', device: 'resp-w1', family: 'responder', patient: null })
  sealer = new DeviceSealer({ tenant: 'care-w', device: 'cal-w1', keyId: dev.keyId, key: Buffer.from(dev.key, 'base64url') })
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

/** Reads what the broker sends on `s`: collects bytes until `n` have arrived, or the socket closes. */
class Wire {
  private buf = Buffer.alloc(0)
  private waiter: (() => void) | null = null
  closed = false
  constructor (readonly s: Socket) {
    s.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.waiter?.() })
    s.on('close', () => { this.closed = true; this.waiter?.() })
    s.on('error', () => {})
  }

  static async open (localAddress?: string): Promise<Wire> { return new Wire(await rawSocket(node.mqtt!.port, localAddress)) }

  /** Writes `bytes` and resolves with the next `n` bytes the broker sends, as hex (fewer if it closed first). */
  async send (bytes: Buffer, n: number): Promise<string> {
    this.s.write(bytes)
    return await this.take(n)
  }

  async take (n: number): Promise<string> {
    while (this.buf.length < n && !this.closed) await new Promise<void>((resolve) => { this.waiter = resolve })
    this.waiter = null
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(out.length)
    return out.toString('hex')
  }

  /** Resolves once the broker has closed the connection; returns what it sent before closing. */
  async closedAfter (bytes?: Buffer): Promise<string> {
    if (bytes !== undefined) this.s.write(bytes)
    if (!this.closed) await once(this.s, 'close')
    const rest = this.buf.toString('hex')
    this.buf = Buffer.alloc(0)
    return rest
  }
}

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff])
const str = (s: string): Buffer => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)])
const packet = (header: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts)
  return Buffer.concat([Buffer.from([header]), varint(body.length), body])
}
const subscribe = (id: number, topic: string, qos: number): Buffer => packet(0x82, u16(id), str(topic), Buffer.from([qos]))
const unsubscribe = (id: number, topic: string): Buffer => packet(0xa2, u16(id), str(topic))
const pubrel = (id: number): Buffer => packet(0x62, u16(id))
const PINGREQ = Buffer.from([0xc0, 0x00])
const DISCONNECT = Buffer.from([0xe0, 0x00])
const login = (o: { clean?: boolean } = {}): Buffer => connectPacket({ clientId: 'cal-w1', username: 'cal-w1', password: dev.secret, ...o })
const alarm = (): { topic: string; frame: Buffer } => {
  const { topic, frame } = sealer.seal('alarm', alarms.next(NOW - 60_000))
  return { topic, frame: Buffer.from(frame) }
}

describe('MQTT 3.1.1 wire bytes', () => {
  it('a session: CONNACK, SUBACK granted and refused, PUBACK stored and refused, QoS 0, PINGRESP, QoS 2, UNSUBACK', async () => {
    const w = await Wire.open()
    expect(await w.send(login(), 4)).toBe('20020000')
    expect(await w.send(subscribe(1, 'v1/care-w/cal-w1/cmd', 1), 5)).toBe('9003000101')
    expect(await w.send(subscribe(2, 'v1/care-w/#', 1), 5)).toBe('9003000280')
    const before = await count(node, 'alarm_events', "device_id = 'cal-w1'")
    const a = alarm()
    expect(await w.send(publishPacket(a.topic, a.frame, 1, 3), 4)).toBe('40020003')
    // refused (not an envelope): acknowledged all the same, so a device does not resend poison
    expect(await w.send(publishPacket(a.topic, Buffer.from('not an envelope'), 1, 4), 4)).toBe('40020004')
    // a replay of the stored frame: refused, acknowledged
    expect(await w.send(publishPacket(a.topic, a.frame, 1, 5), 4)).toBe('40020005')
    // QoS 0 is never answered; the PINGRESP that follows is the next thing on the wire
    const b = alarm()
    w.s.write(publishPacket(b.topic, b.frame, 0))
    expect(await w.send(PINGREQ, 2)).toBe('d000')
    const c = alarm()
    expect(await w.send(publishPacket(c.topic, c.frame, 2, 6), 4)).toBe('50020006')
    expect(await w.send(pubrel(6), 4)).toBe('70020006')
    expect(await w.send(unsubscribe(7, 'v1/care-w/cal-w1/cmd'), 4)).toBe('b0020007')
    expect(await w.closedAfter(DISCONNECT)).toBe('')
    expect(await count(node, 'alarm_events', "device_id = 'cal-w1'")).toBe(before + 3)
  })

  it('a publish outside the device\'s own topics closes the connection without a PUBACK', async () => {
    const w = await Wire.open()
    expect(await w.send(login(), 4)).toBe('20020000')
    const a = alarm()
    expect(await w.closedAfter(publishPacket('v1/care-other/cal-w1/alarm', a.frame, 1, 9))).toBe('')
  })

  it('a persistent session (clean session 0) is present on the next CONNECT', async () => {
    const w = await Wire.open()
    expect(await w.send(login({ clean: false }), 4)).toBe('20020000')
    expect(await w.send(subscribe(1, 'v1/care-w/cal-w1/cmd', 1), 5)).toBe('9003000101')
    await w.closedAfter(DISCONNECT)
    const again = await Wire.open()
    expect(await again.send(login({ clean: false }), 4)).toBe('20020100')
    await again.closedAfter(DISCONNECT)
    // and a clean session discards it
    const clean = await Wire.open()
    expect(await clean.send(login(), 4)).toBe('20020000')
    await clean.closedAfter(DISCONNECT)
  })

  it('refused CONNECTs: return codes 4, 2, 2 (empty id, clean 0), 5 (back-off), each followed by a close', async () => {
    const a = await Wire.open('127.0.0.9')
    expect(await a.send(connectPacket({ clientId: 'cal-w1', username: 'cal-w1', password: 'wrong' }), 4)).toBe('20020004')
    expect(await a.closedAfter()).toBe('')
    const b = await Wire.open()
    expect(await b.send(connectPacket({ clientId: 'other', username: 'cal-w1', password: dev.secret }), 4)).toBe('20020002')
    expect(await b.closedAfter()).toBe('')
    const c = await Wire.open()
    expect(await c.send(connectPacket({ clientId: '', username: 'cal-w1', password: dev.secret, clean: false }), 4)).toBe('20020002')
    expect(await c.closedAfter()).toBe('')
    // the second failure from 127.0.0.9 starts its back-off: the next attempt is refused unchecked
    const d = await Wire.open('127.0.0.9')
    expect(await d.send(connectPacket({ clientId: 'cal-w1', username: 'cal-w1', password: 'wrong' }), 4)).toBe('20020004')
    await d.closedAfter()
    const e = await Wire.open('127.0.0.9')
    expect(await e.send(connectPacket({ clientId: 'cal-w1', username: 'cal-w1', password: 'wrong' }), 4)).toBe('20020004')
    await e.closedAfter()
    const f = await Wire.open('127.0.0.9')
    expect(await f.send(login(), 4)).toBe('20020005')
    expect(await f.closedAfter()).toBe('')
  })

  it('protocol violations close without an answer: a first packet that is not CONNECT, a second CONNECT, an oversized packet', async () => {
    const a = await Wire.open()
    expect(await a.closedAfter(PINGREQ)).toBe('')
    const b = await Wire.open()
    expect(await b.send(login(), 4)).toBe('20020000')
    expect(await b.closedAfter(login())).toBe('')
    const c = await Wire.open()
    expect(await c.send(login(), 4)).toBe('20020000')
    expect(await c.closedAfter(Buffer.concat([Buffer.from([0x32]), varint(node.config.MAX_PACKET_BYTES + 1)]))).toBe('')
  })

  it('at most 100 QoS 2 messages may wait for their PUBREL; the 101st closes the connection', async () => {
    const w = await Wire.open()
    expect(await w.send(login(), 4)).toBe('20020000')
    const junk = Buffer.from('x')
    for (let id = 1; id <= 100; id++) expect(await w.send(publishPacket('v1/care-w/cal-w1/alarm', junk, 2, id), 4)).toBe(`5002${id.toString(16).padStart(4, '0')}`)
    // a resend of one still waiting takes no second place
    expect(await w.send(publishPacket('v1/care-w/cal-w1/alarm', junk, 2, 100), 4)).toBe('50020064')
    expect(await w.closedAfter(publishPacket('v1/care-w/cal-w1/alarm', junk, 2, 101))).toBe('')
    // a PUBREL frees its place
    const v = await Wire.open()
    expect(await v.send(login(), 4)).toBe('20020000')
    for (let id = 1; id <= 100; id++) await v.send(publishPacket('v1/care-w/cal-w1/alarm', junk, 2, id), 4)
    expect(await v.send(pubrel(1), 4)).toBe('70020001')
    expect(await v.send(publishPacket('v1/care-w/cal-w1/alarm', junk, 2, 101), 4)).toBe('50020065')
    await v.closedAfter(DISCONNECT)
  }, 60_000)

  it('a responder subscribed to its tenant\'s alerts gets each alarm as a QoS 1 PUBLISH with the notice as JSON', async () => {
    const r = await Wire.open()
    expect(await r.send(connectPacket({ clientId: 'resp-w1', username: 'resp-w1', password: responder.secret }), 4)).toBe('20020000')
    expect(await r.send(subscribe(1, 'v1/care-w/alerts', 1), 5)).toBe('9003000101')
    const w = await Wire.open()
    expect(await w.send(login(), 4)).toBe('20020000')
    const { topic, frame } = sealer.seal('alarm', { ...alarms.next(NOW - 30_000), kind: 1, location: undefined })
    expect(await w.send(publishPacket(topic, Buffer.from(frame), 1, 1), 4)).toBe('40020001')
    const { header, body } = await readPacket(r)
    expect(header).toBe(0x32)
    const topicLength = body.readUInt16BE(0)
    expect(body.subarray(2, 2 + topicLength).toString()).toBe('v1/care-w/alerts')
    const json = JSON.parse(body.subarray(4 + topicLength).toString()) as Record<string, unknown>
    expect(Object.keys(json)).toEqual(['seq', 'tenant', 'device', 'patient', 'kind', 'occurredAtMs', 'ingestedAtMs', 'location'])
    expect(json).toMatchObject({ tenant: 'care-w', device: 'cal-w1', patient: 'p1', kind: 'button_press', location: null })
    await r.closedAfter(DISCONNECT)
    await w.closedAfter(DISCONNECT)
  })
})

/** The next whole packet the broker sends: its first byte and its body. */
async function readPacket (w: Wire): Promise<{ header: number; body: Buffer }> {
  const header = Buffer.from(await w.take(1), 'hex')[0]!
  let length = 0
  for (let mul = 1; ; mul *= 128) {
    const b = Buffer.from(await w.take(1), 'hex')[0]!
    length += (b & 0x7f) * mul
    if ((b & 0x80) === 0) break
  }
  return { header, body: Buffer.from(await w.take(length), 'hex') }
}
