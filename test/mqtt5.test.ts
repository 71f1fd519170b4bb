/**
 * MQTT 5 devices against a real node, with mqtt.js (protocolVersion 5) and raw
 * mqtt-packet connections: the CONNACK advertises the node's limits; every
 * refusal reason arrives as its PUBACK reason code and reason string
 * (DEVICE_ANSWERS in src/reasons.ts), a stored message as 0x00 with its rows
 * read back from storage; CONNECT refusals as their CONNACK codes; Receive
 * Maximum, topic aliases, user-property floods and oversized packets are
 * refused with their DISCONNECT codes and counted like the 3.1.1 refusals.
 */
import mqtt, { type IClientPublishOptions, type MqttClient, type Packet } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DeviceSealer, createAlarmModel, createSpotModel } from '../devices/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment, Family } from '../src/registry/index.ts'
import { DEVICE_ANSWERS, type DeviceAnswerKey } from '../src/reasons.ts'
import { Raw5 } from './support/raw-mqtt5.ts'
import { count, rowsOf, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const clients: MqttClient[] = []
const NOW = Date.now()
const alarms = createAlarmModel(5)
const spots = createSpotModel(5)
const rejected = (reason: string): number => node.metrics.rejected[reason] ?? 0

beforeAll(async () => {
  dir = tempDir('vf-mqtt5-')
  node = await startTestNode(dir.path, { PUBLISH_RATE: 1, PUBLISH_BURST: 40, MQTT5_RECEIVE_MAXIMUM: 5, MQTT5_SESSION_EXPIRY_MAX_S: 600, AUTH_FREE_FAILURES: 2 })
  for (const t of ['care-5', 'care-x']) await node.registry.createTenant(t, t)
  await node.registry.createPatient('care-5', 'p-yes')
  await node.registry.createPatient('care-5', 'p-no')
  await node.registry.recordConsent({ tenant: 'care-5', patient: 'p-yes', purpose: 'care', category: 'spot_measurements', action: 'grant', recordedBy: 'nurse-1', source: 'paper_form', validFromMs: NOW - 86_400_000 })
}, 60_000)
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await node?.close()
  dir?.remove()
})

interface Dev { e: Enrollment; sealer: DeviceSealer; c: MqttClient }

async function enrol (device: string, family: Family, patient: string | null, tenant = 'care-5'): Promise<Enrollment> {
  return await node.registry.enrollDevice({ tenant, device, family, patient })
}

async function connect5 (e: Enrollment, opts: Partial<mqtt.IClientOptions> = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync({
    protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost', protocolVersion: 5,
    clientId: e.device, username: e.device, password: e.secret, clean: true, reconnectPeriod: 0, connectTimeout: 5000, ...opts,
  })
  clients.push(c)
  return c
}

async function device (id: string, family: Family = 'calarm', patient: string | null = 'p-yes'): Promise<Dev> {
  const e = await enrol(id, family, patient)
  const sealer = new DeviceSealer({ tenant: 'care-5', device: id, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
  return { e, sealer, c: await connect5(e) }
}

/** Publishes at QoS 1 and resolves with the PUBACK's reason code and reason string (mqtt.js hands the PUBACK over only with an error). */
async function publish5 (c: MqttClient, topic: string, frame: Uint8Array, opts: IClientPublishOptions = {}): Promise<{ code: number; text: string | undefined }> {
  return await new Promise((resolve) => {
    c.publish(topic, Buffer.from(frame), { qos: 1, ...opts }, (err, packet) => {
      const p = packet as { properties?: { reasonString?: string } } | undefined
      resolve({ code: (err as { code?: number } | undefined)?.code ?? 0, text: p?.properties?.reasonString })
    })
  })
}

const answer = (key: DeviceAnswerKey): { code: number; text: string } => ({ code: DEVICE_ANSWERS[key].code, text: DEVICE_ANSWERS[key].text })
const disconnected = (c: MqttClient): Promise<number> => new Promise((resolve) => { c.once('disconnect', (p: Packet) => { resolve((p as { reasonCode?: number }).reasonCode ?? -1) }) })

describe('MQTT 5 CONNACK', () => {
  it('advertises Receive Maximum, Maximum Packet Size and Topic Alias Maximum, and cuts the Session Expiry Interval to the node\'s maximum', async () => {
    const e = await enrol('gw-5', 'gateway', null)
    const c = await connect5(e, { clean: false, properties: { sessionExpiryInterval: 86_400 } })
    const connack = await new Promise<Packet>((resolve) => { c.once('packetreceive', resolve); c.reconnect() })
    expect(connack).toMatchObject({
      cmd: 'connack', reasonCode: 0,
      properties: { receiveMaximum: 5, topicAliasMaximum: 16, maximumPacketSize: node.config.MAX_PACKET_BYTES + 4, sessionExpiryInterval: 600, sharedSubscriptionAvailable: false },
    })
    // the gateway phone's session outlives its connection: its subscription is still there
    await c.subscribeAsync('v1/care-5/gw-5/cmd', { qos: 1 })
    await c.endAsync()
    const again = await Raw5.open(node.mqtt!.port)
    expect(await again.connect('gw-5', 'gw-5', e.secret, { sessionExpiryInterval: 60 }, false)).toMatchObject({ cmd: 'connack', reasonCode: 0, sessionPresent: true })
    again.end()
    // a session with no expiry interval ends with its connection
    const once = await Raw5.open(node.mqtt!.port)
    expect(await once.connect('gw-5', 'gw-5', e.secret, {}, true)).toMatchObject({ reasonCode: 0, sessionPresent: false })
    once.end()
  })

  it('refuses CONNECTs with their reason codes and strings: 0x86, 0x85, 0x9F (back-off)', async () => {
    const e = await enrol('cal-c5', 'calarm', null)
    const expectRefusal = async (r: Raw5, p: Packet | null, key: DeviceAnswerKey): Promise<void> => {
      expect(p).toMatchObject({ cmd: 'connack', reasonCode: DEVICE_ANSWERS[key].code, properties: { reasonString: DEVICE_ANSWERS[key].text } })
      await r.closedByBroker()
    }
    const a = await Raw5.open(node.mqtt!.port, '127.0.0.5')
    await expectRefusal(a, await a.connect('cal-c5', 'cal-c5', 'wrong'), 'authPassword')
    const b = await Raw5.open(node.mqtt!.port)
    await expectRefusal(b, await b.connect('someone-else', 'cal-c5', e.secret), 'clientId')
    for (let i = 0; i < 2; i++) {
      const c = await Raw5.open(node.mqtt!.port, '127.0.0.5')
      await expectRefusal(c, await c.connect('cal-c5', 'cal-c5', 'wrong'), 'authPassword')
    }
    // the third failure from 127.0.0.5 started its back-off: the next attempt is refused unchecked
    const d = await Raw5.open(node.mqtt!.port, '127.0.0.5')
    await expectRefusal(d, await d.connect('cal-c5', 'cal-c5', e.secret), 'authBackoff')
    // mqtt.js reports the code
    const bad = mqtt.connectAsync({ host: '127.0.0.1', port: node.mqtt!.port, protocolVersion: 5, clientId: 'cal-c5', username: 'cal-c5', password: 'nope', reconnectPeriod: 0 })
    await expect(bad).rejects.toMatchObject({ code: 0x86 })
  })
})

describe('MQTT 5 PUBACK reason codes', () => {
  it('a stored message is 0x00, and its row is read back from storage', async () => {
    const d = await device('cvk-ok', 'cvitals', 'p-yes')
    const m = { ...spots.next(NOW - 60_000), systolic: 128, diastolic: 84 }
    const { topic, frame, seq } = d.sealer.seal('spot', m)
    expect(await publish5(d.c, topic, frame)).toEqual({ code: 0, text: undefined })
    const rows = await rowsOf<{ systolic: number; diastolic: number; seq: string; patient_id: string }>(node,
      "SELECT systolic, diastolic, toString(seq) AS seq, patient_id FROM {db}.spot_measurements WHERE device_id = 'cvk-ok'")
    expect(rows).toEqual([{ systolic: 128, diastolic: 84, seq: String(seq), patient_id: 'p-yes' }])
  })

  it('every refusal of the ingest path arrives as its code with its reason string, and nothing is stored', async () => {
    const d = await device('cvk-bad', 'cvitals', 'p-yes')
    const s = d.sealer
    const spot = (): ReturnType<typeof spots.next> => spots.next(NOW - 60_000)
    const cases: Array<[DeviceAnswerKey, () => { topic: string; frame: Uint8Array }]> = [
      ['envelope', () => ({ topic: 'v1/care-5/cvk-bad/spot', frame: Buffer.from('not an envelope') })],
      ['decode', () => ({ topic: 'v1/care-5/cvk-bad/spot', frame: s.sealRaw('spot', 900_001, Buffer.from([0xff, 0xff, 0xff])) })],
      ['range', () => s.seal('spot', { ...spot(), systolic: 999 })],
      ['unknownKey', () => ({ topic: 'v1/care-5/cvk-bad/spot', frame: new DeviceSealer({ tenant: 'care-5', device: 'cvk-bad', keyId: 9, key: Buffer.alloc(32, 1) }).sealRaw('spot', 900_002, Buffer.from([8, 1])) })],
      ['decrypt', () => { const f = s.seal('spot', spot()); f.frame[f.frame.length - 1]! ^= 1; return f }],
    ]
    for (const [key, make] of cases) {
      const before = await count(node, 'rejected_messages', "device_id = 'cvk-bad' AND reason = {r:String}", { r: DEVICE_ANSWERS[key].reason })
      const { topic, frame } = make()
      expect(await publish5(d.c, topic, frame), key).toEqual(answer(key))
      expect(await count(node, 'rejected_messages', "device_id = 'cvk-bad' AND reason = {r:String}", { r: DEVICE_ANSWERS[key].reason }), key).toBe(before + 1)
    }
    // a replay of a stored frame
    const first = s.seal('spot', spot())
    expect(await publish5(d.c, first.topic, first.frame)).toEqual({ code: 0, text: undefined })
    expect(await publish5(d.c, first.topic, first.frame)).toEqual(answer('replay'))
    expect(d.c.connected).toBe(true)
    expect(await count(node, 'spot_measurements', "device_id = 'cvk-bad'")).toBe(1)
  })

  it('a message whose every value the patient has not consented to is 0x87 "no consent", and its sequence number is used up', async () => {
    const d = await device('cvk-nc', 'cvitals', 'p-no')
    const { topic, frame } = d.sealer.seal('spot', spots.next(NOW - 60_000))
    expect(await publish5(d.c, topic, frame)).toEqual(answer('consent'))
    expect(await publish5(d.c, topic, frame)).toEqual(answer('replay'))
    expect(await count(node, 'spot_measurements', "device_id = 'cvk-nc'")).toBe(0)
  })

  it('a publish outside its own topics gets 0x87 and then a DISCONNECT 0x87; a rate above the limit 0x97 and a DISCONNECT 0x97', async () => {
    for (const [topic, key] of [['v1/care-x/cal-t5/alarm', 'tenant'], ['v1/care-5/cal-other/alarm', 'device'], ['v1/care-5/cal-t5/nope', 'topic']] as const) {
      const d = await device(`cal-t5-${key}`)
      const gone = disconnected(d.c)
      const before = rejected(DEVICE_ANSWERS[key].reason)
      expect(await publish5(d.c, topic.replace('cal-t5', `cal-t5-${key}`), d.sealer.seal('alarm', alarms.next(NOW)).frame)).toEqual(answer(key))
      expect(await gone).toBe(0x87)
      expect(rejected(DEVICE_ANSWERS[key].reason)).toBe(before + 1)
    }
    const d = await device('cal-rate')
    const gone = disconnected(d.c)
    // the burst of 40 first; the bucket refills at 1/s while they go, so publish until the refusal (bounded)
    const answers: number[] = []
    while (answers.at(-1) !== 0x97 && answers.length < 400) {
      const { topic, frame } = d.sealer.seal('alarm', alarms.next(NOW - 10_000))
      answers.push((await publish5(d.c, topic, frame)).code)
    }
    expect(answers.length).toBeGreaterThan(40)
    expect(answers.slice(0, -1).every((c) => c === 0)).toBe(true)
    expect(answers.at(-1)).toBe(0x97)
    expect(await gone).toBe(0x97)
  })
})

describe('MQTT 5 revocation', () => {
  it('a connected device that is revoked is told so: DISCONNECT 0x87, and its next CONNECT 0x86 like a wrong secret', async () => {
    const d = await device('cal-rev5')
    const gone = disconnected(d.c)
    await node.registry.revokeDevice('care-5', 'cal-rev5')
    expect(await gone).toBe(0x87)
    const r = await Raw5.open(node.mqtt!.port)
    expect(await r.connect('cal-rev5', 'cal-rev5', d.e.secret)).toMatchObject({ cmd: 'connack', reasonCode: 0x86 })
  })
})

describe('MQTT 5 limits on the wire', () => {
  const login = async (device: string): Promise<{ r: Raw5; e: Enrollment; sealer: DeviceSealer }> => {
    const e = await enrol(device, 'calarm', null)
    const r = await Raw5.open(node.mqtt!.port)
    expect(await r.connect(device, device, e.secret)).toMatchObject({ cmd: 'connack', reasonCode: 0 })
    return { r, e, sealer: new DeviceSealer({ tenant: 'care-5', device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') }) }
  }
  const publish = (topic: string, payload: Buffer | Uint8Array, messageId: number, properties: Record<string, unknown> = {}): Packet =>
    ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, messageId, retain: false, dup: false, properties })

  it('more unanswered QoS 1 publishes than the Receive Maximum (5) is a DISCONNECT 0x93', async () => {
    const { r, sealer } = await login('cal-rm')
    const before = rejected('ING_ERR_INFLIGHT')
    // six valid alarms in one write: the first five wait for the write-ahead log, the sixth is one too many
    r.send(Buffer.concat(Array.from({ length: 6 }, (_, i) => {
      const { topic, frame } = sealer.seal('alarm', alarms.next(NOW - 5000))
      return mqttPacket.generate(publish(topic, frame, i + 1), { protocolVersion: 5 })
    })))
    const seen: Packet[] = []
    for (let p = await r.next(); p !== null; p = await r.next()) seen.push(p)
    expect(seen.find((p) => p.cmd === 'disconnect')).toMatchObject({ reasonCode: 0x93 })
    expect(rejected('ING_ERR_INFLIGHT')).toBe(before + 1)
  })

  it('topic aliases: one set and used is stored; 0, above the maximum, or never set is a DISCONNECT 0x94, counted', async () => {
    const { r, sealer } = await login('cal-al')
    const a = sealer.seal('alarm', alarms.next(NOW - 5000))
    r.send(publish(a.topic, a.frame, 1, { topicAlias: 3 }))
    expect(await r.next()).toMatchObject({ cmd: 'puback', messageId: 1 })
    const b = sealer.seal('alarm', alarms.next(NOW - 4000))
    r.send(publish('', b.frame, 2, { topicAlias: 3 }))
    expect(await r.next()).toMatchObject({ cmd: 'puback', messageId: 2 })
    r.end()
    expect(await count(node, 'alarm_events', "device_id = 'cal-al'")).toBe(2)
    for (const [i, alias] of [[0, 0], [1, 17], [2, 5]] as const) {
      const { r: s, sealer: z } = await login(`cal-al${i}`)
      const before = rejected('ING_ERR_TOPIC_ALIAS')
      const f = z.seal('alarm', alarms.next(NOW - 5000))
      s.send(publish(alias === 5 ? '' : f.topic, f.frame, 1, { topicAlias: alias }))
      expect(await s.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x94 })
      expect(rejected('ING_ERR_TOPIC_ALIAS')).toBe(before + 1)
    }
  })

  it('a user-property flood on PUBLISH is a DISCONNECT 0x83 and on CONNECT a refusal, both counted; an oversized PUBLISH is a DISCONNECT 0x95', async () => {
    const { r, sealer } = await login('cal-up')
    const before = rejected('ING_ERR_PROPERTIES')
    const flood = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'v'.repeat(40)]))
    const f = sealer.seal('alarm', alarms.next(NOW - 5000))
    r.send(publish(f.topic, f.frame, 1, { userProperties: flood }))
    expect(await r.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x83 })
    expect(rejected('ING_ERR_PROPERTIES')).toBe(before + 1)
    // a single oversized user property on CONNECT
    const e = await enrol('cal-up2', 'calarm', null)
    const c = await Raw5.open(node.mqtt!.port)
    expect(await c.connect('cal-up2', 'cal-up2', e.secret, { userProperties: { big: 'x'.repeat(2000) } })).toBeNull()
    expect(rejected('ING_ERR_PROPERTIES')).toBe(before + 2)
    const { r: big } = await login('cal-big')
    const sizeBefore = rejected('ING_ERR_SIZE')
    big.send(publish('v1/care-5/cal-big/alarm', Buffer.alloc(node.config.MAX_PACKET_BYTES + 10), 1))
    expect(await big.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x95 })
    expect(rejected('ING_ERR_SIZE')).toBe(sizeBefore + 1)
    expect(await count(node, 'rejected_messages', "reason IN ('ING_ERR_PROPERTIES', 'ING_ERR_SIZE', 'ING_ERR_TOPIC_ALIAS', 'ING_ERR_INFLIGHT')")).toBeGreaterThanOrEqual(4)
  })

  it('prototype names: no device may be enrolled as one; subscribing or unsubscribing to them harms only the client sending it', async () => {
    for (const id of ['constructor', '__proto__', 'toString']) await expect(enrol(id, 'calarm', null)).rejects.toMatchObject({ code: 'ING_ERR_ID' })
    const { r } = await login('cal-proto')
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '__proto__', qos: 1 }, { topic: 'constructor', qos: 1 }] })
    r.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['constructor', '__proto__', 'hasOwnProperty'] })
    // refused like any foreign filter (aedes 2.0.0-beta.1 alone throws on the first and ends the process)
    expect(await r.next()).toMatchObject({ cmd: 'suback', messageId: 1, granted: [0x87, 0x87] })
    expect(await r.next()).toMatchObject({ cmd: 'unsuback', messageId: 2, granted: [0x11, 0x11, 0x11] })
    r.end()
    // everyone else is still served
    const { r: other, sealer } = await login('cal-proto2')
    const f = sealer.seal('alarm', alarms.next(NOW - 5000))
    other.send(publish(f.topic, f.frame, 1))
    expect(await other.next()).toMatchObject({ cmd: 'puback', messageId: 1 })
    other.end()
  })

  it('a PUBACK carries no reason string when the device asked for no problem information', async () => {
    const e = await enrol('cal-rp', 'calarm', null)
    const r = await Raw5.open(node.mqtt!.port)
    expect(await r.connect('cal-rp', 'cal-rp', e.secret, { requestProblemInformation: false })).toMatchObject({ reasonCode: 0 })
    r.send(publish('v1/care-5/cal-rp/alarm', Buffer.from('junk'), 7))
    const ack = await r.next()
    expect(ack).toMatchObject({ cmd: 'puback', messageId: 7, reasonCode: 0x99 })
    expect((ack as { properties?: unknown }).properties).toBeUndefined()
    r.end()
  })
})
