/**
 * The packet guard's scanner as a parser (property-based): whatever way a
 * stream of MQTT packets is cut into chunks, what it forwards to aedes is the
 * same bytes in the same order, except topic filters of SUBSCRIBE and
 * UNSUBSCRIBE that name a property of every JavaScript object, which come out
 * overwritten with '!' (3.1.1 and MQTT 5 alike); and an oversized packet is
 * still caught before its body. What aedes writes in one tick (a group commit's PUBACKs to a
 * connection) leaves as one write to the socket, the same bytes in the same order.
 */
import { once } from 'node:events'
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net'
import fc from 'fast-check'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { describe, expect, it, vi } from 'vitest'
import { FrameScanner, GuardedConnection } from '../src/broker/index.ts'

const LIMITS = { maxPacketBytes: 4096, maxConnectBytes: 1024 }
const PROTO = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']
const filter = fc.oneof(fc.constantFrom(...PROTO), fc.stringMatching(/^[a-z0-9/+#_-]{1,20}$/))

const packetOf = (version: 4 | 5) => fc.oneof(
  fc.record({ topic: fc.stringMatching(/^[a-z0-9/_]{1,30}$/), payload: fc.uint8Array({ maxLength: 300 }), qos: fc.constantFrom(0, 1, 2) })
    .map(({ topic, payload, qos }): Packet => ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: qos, dup: false, retain: false, ...(qos > 0 ? { messageId: 7 } : {}) })),
  fc.array(filter, { minLength: 1, maxLength: 4 }).map((topics): Packet => ({ cmd: 'subscribe', messageId: 3, subscriptions: topics.map((topic) => ({ topic, qos: 1 as const })), ...(version === 5 ? { properties: { userProperties: { a: 'b' } } } : {}) })),
  fc.array(filter, { minLength: 1, maxLength: 4 }).map((topics): Packet => ({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: topics })),
  fc.constant({ cmd: 'pingreq' }),
)

/** What aedes must receive: the packet with prototype-named filters overwritten. */
function expected (p: Packet): Packet {
  const bang = (t: string): string => PROTO.includes(t) ? '!'.repeat(t.length) : t
  if (p.cmd === 'subscribe') return { ...p, subscriptions: p.subscriptions.map((s) => ({ ...s, topic: bang(s.topic) })) }
  if (p.cmd === 'unsubscribe') return { ...p, unsubscriptions: p.unsubscriptions.map(bang) }
  return p
}

/** Cuts `bytes` at the given fractions. */
function cut (bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((f) => Math.floor(f * bytes.length)))].sort((a, b) => a - b)
  const out: Buffer[] = []
  let from = 0
  for (const p of points) { if (p > from) { out.push(bytes.subarray(from, p)); from = p } }
  out.push(bytes.subarray(from))
  return out
}

describe('packet guard scanner', () => {
  for (const version of [4, 5] as const) {
    it(`forwards every byte in order however the stream is cut, prototype-named filters overwritten (protocol level ${version})`, () => {
      fc.assert(fc.property(fc.array(packetOf(version), { maxLength: 12 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 20 }), (packets, at) => {
        const opts = { protocolVersion: version }
        const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: 'd1', clean: true, keepalive: 30 }, opts)
        const input = Buffer.concat([connect, ...packets.map((p) => mqttPacket.generate(p, opts))])
        const want = Buffer.concat([connect, ...packets.map((p) => mqttPacket.generate(expected(p), opts))])
        const out: Uint8Array[] = []
        const scanner = new FrameScanner(LIMITS, (b) => { out.push(Buffer.from(b)) })
        for (const chunk of cut(input, at)) expect(scanner.scan(chunk)).toBeNull()
        expect(Buffer.concat(out).toString('hex')).toBe(want.toString('hex'))
        expect(scanner.isMqtt5).toBe(version === 5)
      }), { numRuns: 400 })
    })
  }

  it('still stops an oversized packet at its header, and a first packet that is not CONNECT', () => {
    const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'd1', clean: true, keepalive: 30 })
    const s = new FrameScanner(LIMITS)
    expect(s.scan(connect)).toBeNull()
    expect(s.scan(Buffer.from([0x82, 0x80, 0x40]))).toBe('ING_ERR_SIZE') // a SUBSCRIBE claiming 8 KiB
    expect(new FrameScanner(LIMITS).scan(Buffer.from([0xc0, 0x00]))).toBe('ING_ERR_PROTOCOL')
  })
})

describe('packet guard connection', () => {
  it('sends what aedes writes in one tick as one socket write, byte for byte (a commit\'s PUBACKs: one TLS record, not three per PUBACK)', async () => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    const client = createConnection((srv.address() as AddressInfo).port, '127.0.0.1')
    const [server] = await once(srv, 'connection') as [Socket]
    const guard = new GuardedConnection(server, { maxPacketBytes: 4096, maxConnectBytes: 1024 }, () => {})
    // the real write, counted
    const socketWrite = vi.spyOn(server, 'write')
    const received: Buffer[] = []
    client.on('data', (b: Buffer) => { received.push(b) })
    // acknowledgements, and publishes (an alarm relayed to a responder: mqtt-packet writes its topic as a string)
    const packet = fc.oneof(
      fc.record({ cmd: fc.constantFrom('puback' as const, 'pubrec' as const), messageId: fc.integer({ min: 1, max: 65535 }) }),
      fc.record({ topic: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }), payload: fc.uint8Array({ maxLength: 200 }), messageId: fc.integer({ min: 1, max: 65535 }) })
        .map(({ topic, payload, messageId }): Packet => ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, messageId, dup: false, retain: false })),
    )
    try {
      await fc.assert(fc.asyncProperty(fc.array(fc.array(packet, { minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 4 }), async (ticks) => {
        socketWrite.mockClear()
        received.length = 0
        let want = Buffer.alloc(0)
        for (const packets of ticks) {
          // as aedes writes them (mqtt-packet corks the stream until the next tick)
          for (const p of packets) mqttPacket.writeToStream(p, guard)
          want = Buffer.concat([want, ...packets.map((p) => mqttPacket.generate(p))])
          await new Promise((resolve) => setImmediate(resolve))
        }
        while (Buffer.concat(received).length < want.length) await new Promise((resolve) => setTimeout(resolve, 1))
        expect(Buffer.concat(received).toString('hex')).toBe(want.toString('hex'))
        expect(socketWrite).toHaveBeenCalledTimes(ticks.length)
      }), { numRuns: 40 })
    } finally {
      client.destroy()
      guard.destroy()
      srv.close()
    }
  })
})
