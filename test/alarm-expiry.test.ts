/**
 * MQTT 5 Message Expiry on alarms: a cAlarm that publishes a button press with
 * a Message Expiry Interval gives its notice an expiry (taken in + interval).
 * Responders get it over MQTT and SSE with `expiresAtMs` and `stale`; once the
 * expiry has passed the alarm is still delivered and shown, marked stale: in
 * an SSE replay, and in a responder's MQTT session queue delivered after it.
 * A 3.1.1 alarm's notice has neither field (test/mqtt311-wire.test.ts).
 */
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DeviceSealer, createAlarmModel } from '../devices/index.ts'
import { createAdminClient } from '../src/api/index.ts'
import { alarmNoticeJson, restaleNotice, type AlarmNotice } from '../src/decode/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { startTestNode, tempDir } from './support/node.ts'

const PASSWORD = 'a long responder password'
let dir: ReturnType<typeof tempDir>
let node: IngestNode
let cal: Enrollment
let resp: Enrollment
let sealer: DeviceSealer
const clients: MqttClient[] = []
const model = createAlarmModel(3)

beforeAll(async () => {
  dir = tempDir('vf-expiry-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant('care-e', 'E')
  await node.registry.createPatient('care-e', 'p1')
  cal = await node.registry.enrollDevice({ tenant: 'care-e', device: 'cal-e1', family: 'calarm', patient: 'p1' })
  resp = await node.registry.enrollDevice({ tenant: 'care-e', device: 'resp-e1', family: 'responder', patient: null })
  sealer = new DeviceSealer({ tenant: 'care-e', device: 'cal-e1', keyId: cal.keyId, key: Buffer.from(cal.key, 'base64url') })
  await createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken).request('POST', '/admin/users', { tenant: 'care-e', user: 'desk', role: 'responder', password: PASSWORD })
}, 60_000)
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await node?.close()
  dir?.remove()
})

const connect5 = async (e: Enrollment, opts: Partial<mqtt.IClientOptions> = {}): Promise<MqttClient> => {
  const c = await mqtt.connectAsync({
    protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost', protocolVersion: 5,
    clientId: e.device, username: e.device, password: e.secret, reconnectPeriod: 0, ...opts,
  })
  clients.push(c)
  return c
}
const nextAlert = (c: MqttClient): Promise<Record<string, unknown>> =>
  new Promise((resolve) => { c.once('message', (_t, payload) => { resolve(JSON.parse(payload.toString()) as Record<string, unknown>) }) })
const press = async (c: MqttClient, expiryS: number): Promise<number> => {
  const f = sealer.seal('alarm', { ...model.next(Date.now() - 1000), kind: 1, location: undefined })
  await c.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1, properties: { messageExpiryInterval: expiryS } })
  return f.seq
}
/** Waits (not a timing assertion) until the node's clock is past `ms`. */
const pastIt = async (ms: number): Promise<void> => { while (Date.now() <= ms) await new Promise((resolve) => setTimeout(resolve, 50)) }

async function sseEvents (lastEventId: string): Promise<string> {
  const base = `http://127.0.0.1:${node.http.port}`
  const login = await fetch(`${base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: 'care-e', user: 'desk', password: PASSWORD }) })
  const { token } = await login.json() as { token: string }
  const r = await fetch(`${base}/api/alarms/stream`, { headers: { authorization: `Bearer ${token}`, 'last-event-id': lastEventId } })
  const reader = r.body!.getReader()
  let buf = ''
  // the replay ends with a `ready` event
  while (!buf.includes('event: ready')) {
    const chunk = await reader.read()
    if (chunk.done) break
    buf += new TextDecoder().decode(chunk.value)
  }
  await reader.cancel()
  return buf
}

describe('alarm notices and MQTT 5 Message Expiry', () => {
  it('a notice without an expiry is as it always was; with one it says whether it is stale', () => {
    const a: AlarmNotice = { tenant: 't', device: 'd', seq: 1n, patient: null, kind: 'fall_detected', occurredAtMs: 1, ingestedAtMs: 2, location: null }
    expect(alarmNoticeJson(a)).toBe('{"seq":1,"tenant":"t","device":"d","patient":null,"kind":"fall_detected","occurredAtMs":1,"ingestedAtMs":2,"location":null}')
    const e = { ...a, expiresAtMs: 1000 }
    expect(JSON.parse(alarmNoticeJson(e, 1000))).toMatchObject({ expiresAtMs: 1000, stale: false })
    expect(JSON.parse(alarmNoticeJson(e, 1001))).toMatchObject({ stale: true })
    const fresh = Buffer.from(alarmNoticeJson(e, 999))
    expect(restaleNotice(fresh, 1000)).toBe(fresh)
    expect(JSON.parse(restaleNotice(fresh, 1001).toString())).toEqual(JSON.parse(alarmNoticeJson(e, 1001)))
    const none = Buffer.from(alarmNoticeJson(a))
    expect(restaleNotice(none, Number.MAX_SAFE_INTEGER)).toBe(none)
  })

  it('reaches a responder over MQTT and SSE with its expiry; once past it, an SSE replay marks it stale', async () => {
    const r = await connect5(resp)
    await r.subscribeAsync('v1/care-e/alerts', { qos: 1 })
    const c = await connect5(cal)
    const live = nextAlert(r)
    const seq = await press(c, 60)
    const n = await live
    expect(n).toMatchObject({ seq, kind: 'button_press', expiresAtMs: (n['ingestedAtMs'] as number) + 60_000, stale: false })

    const short = nextAlert(r)
    const seq2 = await press(c, 1)
    const m = await short
    expect(m).toMatchObject({ seq: seq2, stale: false, expiresAtMs: (m['ingestedAtMs'] as number) + 1000 })
    await pastIt(m['expiresAtMs'] as number)
    const replay = await sseEvents(String((n['ingestedAtMs'] as number) - 1))
    const events = replay.split('\n').filter((l) => l.startsWith('data: {"seq"')).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>)
    expect(events.find((e) => e['seq'] === seq2)).toMatchObject({ stale: true, expiresAtMs: m['expiresAtMs'] })
    expect(events.find((e) => e['seq'] === seq)).toMatchObject({ stale: false })
  })

  it('a responder whose MQTT session outlived its connection gets the alarm it missed, marked stale when delivered past its expiry', async () => {
    const first = await connect5(resp, { clean: false, properties: { sessionExpiryInterval: 300 } })
    await first.subscribeAsync('v1/care-e/alerts', { qos: 1 })
    await first.endAsync()
    const c = await connect5(cal)
    const seq = await press(c, 1)
    // the relay has gone into the responder's session queue; wait until the alarm has expired, then come back
    const expiresAfter = Date.now() + 1000
    await pastIt(expiresAfter)
    const back = mqtt.connect({
      protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost', protocolVersion: 5,
      clientId: resp.device, username: resp.device, password: resp.secret, reconnectPeriod: 0, clean: false, properties: { sessionExpiryInterval: 300 }, manualConnect: true,
    })
    clients.push(back)
    const missed = nextAlert(back)
    back.connect()
    expect(await missed).toMatchObject({ seq, kind: 'button_press', stale: true })
  })
})
