/**
 * The MQTT versions a device may speak, as docs/device-protocol.md states them:
 * 3.1.1 and 5 (aedes 2.0.0-beta.1). An MQTT 5 CONNECT is answered with an
 * MQTT 5 CONNACK carrying the node's limits; a protocol level the node does
 * not speak is refused.
 */
import { once } from 'node:events'
import { connect as tlsConnect } from 'node:tls'
import mqtt from 'mqtt'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let dev: Enrollment

beforeAll(async () => {
  dir = tempDir('vf-mqttv-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant('care-v', 'V')
  dev = await node.registry.enrollDevice({ tenant: 'care-v', device: 'cal-v1', family: 'calarm', patient: null })
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

const connect = (protocolVersion: 4 | 5) => mqtt.connectAsync({
  protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost', protocolVersion,
  clientId: 'cal-v1', username: 'cal-v1', password: dev.secret, clean: true, reconnectPeriod: 0, connectTimeout: 5000,
})

describe('MQTT protocol version', () => {
  it('accepts MQTT 3.1.1', async () => {
    const c = await connect(4)
    expect(c.connected).toBe(true)
    await c.endAsync(true)
  })

  const byHand = async (level: number): Promise<Buffer> => {
    // CONNECT, protocol level `level`, clean start, keep alive 30, empty properties (MQTT 5)
    const str = (v: string): Buffer => Buffer.concat([Buffer.from([v.length >> 8, v.length & 0xff]), Buffer.from(v)])
    const props = level === 5 ? [0] : []
    const body = Buffer.concat([str('MQTT'), Buffer.from([level, 0xc2, 0, 30, ...props]), str('cal-v1'), str('cal-v1'), str(dev.secret)])
    const socket = tlsConnect({ host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost' })
    await once(socket, 'secureConnect')
    socket.write(Buffer.concat([Buffer.from([0x10, body.length]), body]))
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => { chunks.push(c); if (level === 5) socket.end() })
    await once(socket, 'close')
    return Buffer.concat(chunks)
  }

  it('answers an MQTT 5 CONNECT with an MQTT 5 CONNACK: success, and the node\'s limits as properties', async () => {
    const bytes = await byHand(5)
    expect(bytes.subarray(0, 1).toString('hex')).toBe('20')
    const parser = mqttPacket.parser({ protocolVersion: 5 })
    const got: Packet[] = []
    parser.on('packet', (p: Packet) => got.push(p))
    parser.parse(bytes)
    expect(got[0]).toMatchObject({
      cmd: 'connack', reasonCode: 0, sessionPresent: false,
      properties: { receiveMaximum: node.config.MQTT5_RECEIVE_MAXIMUM, topicAliasMaximum: node.config.MQTT5_TOPIC_ALIAS_MAXIMUM, maximumPacketSize: node.config.MAX_PACKET_BYTES + 4 },
    })
    // what an MQTT 5 client library makes of it
    const c = await connect(5)
    expect(c.connected).toBe(true)
    await c.endAsync(true)
  })

  it('closes a CONNECT with a protocol level it does not speak (6) without an answer (the MQTT codec refuses it before the broker sees it)', async () => {
    expect((await byHand(6)).toString('hex')).toBe('')
  })
})
