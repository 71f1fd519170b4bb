/**
 * The MQTT versions a device may speak, as docs/device-protocol.md states them:
 * 3.1.1 is the protocol; an MQTT 5 CONNECT is answered with an MQTT 3.1.1
 * CONNACK, return code 1 (unacceptable protocol version), and the connection
 * is closed. aedes 1.x speaks MQTT 3.1/3.1.1 only; MQTT 5 is on its 2.0 beta
 * line.
 */
import { once } from 'node:events'
import { connect as tlsConnect } from 'node:tls'
import mqtt from 'mqtt'
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

  it('answers an MQTT 5 CONNECT with a 3.1.1 CONNACK, return code 1 (unacceptable protocol version), and closes', async () => {
    // by hand, to see the bytes: CONNECT, protocol level 5, clean start, empty properties
    const str = (v: string): Buffer => Buffer.concat([Buffer.from([v.length >> 8, v.length & 0xff]), Buffer.from(v)])
    const body = Buffer.concat([str('MQTT'), Buffer.from([5, 0xc2, 0, 30, 0]), str('cal-v1'), str('cal-v1'), str(dev.secret)])
    const socket = tlsConnect({ host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost' })
    await once(socket, 'secureConnect')
    socket.write(Buffer.concat([Buffer.from([0x10, body.length]), body]))
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    await once(socket, 'close')
    expect(Buffer.concat(chunks).toString('hex')).toBe('20020001')
    // what an MQTT 5 client library makes of it: mqtt.js reports reason code 1
    await expect(connect(5)).rejects.toMatchObject({ code: 1 })
  })
})
