/**
 * An alarm relayed just before the node dies (kill -9) reaches the responder
 * again after the restart with the same (device, sequence number) key, which
 * is what a responder de-duplicates by, and is stored exactly once.
 *
 * An alarm is relayed on decode, before its commit in the priority lane, so
 * the kill lands either before the commit or after it. After it: the restart
 * ships it from the log, restores the replay window with it, the stream's
 * replay carries it, and the device's resend is refused as a replay (relayed
 * no second time). Before it: nothing was stored or acknowledged, the
 * device's resend is taken and relayed again — with the same key. Either way
 * the responder sees one alarm after de-duplicating, never a refused one, and
 * storage holds it once. Real node in a child process, real TLS, mqtt.js, SSE.
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { startChildNode, type ChildNode } from './support/child-node.ts'
import { tempDir } from './support/node.ts'

const dir = tempDir('vf-alarm-crash-')
const TOKEN = 'alarm-crash-admin-token-0123456789'
const PASSWORD = 'correct horse battery staple'
let child: ChildProcess | null = null
const clients: MqttClient[] = []

async function start (): Promise<ChildNode> {
  const n = await startChildNode(dir.path, TOKEN)
  child = n.proc
  return n
}

async function connect (n: ChildNode, ca: string, e: { device: string; secret: string }): Promise<MqttClient> {
  const c = await mqtt.connectAsync({ protocol: 'mqtts', host: '127.0.0.1', port: n.mqtts, ca, servername: 'localhost', clientId: e.device, username: e.device, password: e.secret, reconnectPeriod: 0, connectTimeout: 10_000 })
  c.on('error', () => {})
  clients.push(c)
  return c
}

interface Notice { device: string; seq: number; kind: string }

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  child?.kill('SIGKILL')
  dir.remove()
})

describe('alarm relay across a crash', () => {
  it('relays again under the same (device, seq) after kill -9, and stores the alarm once whether or not its commit came before the kill', async () => {
    let n = await start()
    let api = createAdminClient(`http://127.0.0.1:${n.http}`, TOKEN)
    const { caPem } = await api.request<{ caPem: string }>('GET', '/admin/connection')
    await api.request('POST', '/admin/tenants', { tenant: 'care-c', displayName: 'C' })
    const cal = await api.request<Enrollment>('POST', '/admin/tenants/care-c/devices', { device: 'cal-c1', family: 'calarm' })
    const resp = await api.request<Enrollment>('POST', '/admin/tenants/care-c/devices', { device: 'resp-c1', family: 'responder' })
    await api.request('POST', '/admin/users', { tenant: 'care-c', user: 'care-c-resp', role: 'responder', password: PASSWORD })

    const live: Notice[] = []
    const responder = await connect(n, caPem, resp)
    responder.on('message', (_t, p) => { live.push(JSON.parse(p.toString()) as Notice) })
    await responder.subscribeAsync('v1/care-c/alerts', { qos: 1 })
    const before = Date.now()
    const device = await connect(n, caPem, cal)
    const sealer = new DeviceSealer({ tenant: 'care-c', device: 'cal-c1', keyId: cal.keyId, key: Buffer.from(cal.key, 'base64url') })
    const fall = sealer.seal('alarm', createAlarmModel(5, { fallProbability: 1 }).next(Date.now() - 1000))
    // not awaited: the node may die before the PUBACK leaves
    device.publish(fall.topic, Buffer.from(fall.frame), { qos: 1 }, () => {})
    for (let i = 0; i < 400 && live.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    child!.kill('SIGKILL')
    await once(child!, 'exit')
    expect(live.map((a) => [a.device, a.seq, a.kind])).toEqual([['cal-c1', fall.seq, 'fall_detected']])

    // restart on the same data directory; the responder listens again, and the device resends what it never saw acknowledged
    n = await start()
    api = createAdminClient(`http://127.0.0.1:${n.http}`, TOKEN)
    const again: Notice[] = []
    const responder2 = await connect(n, caPem, resp)
    responder2.on('message', (_t, p) => { again.push(JSON.parse(p.toString()) as Notice) })
    await responder2.subscribeAsync('v1/care-c/alerts', { qos: 1 })
    const device2 = await connect(n, caPem, cal)
    await device2.publishAsync(fall.topic, Buffer.from(fall.frame), { qos: 1 })
    const next = sealer.seal('alarm', createAlarmModel(6, { pressProbability: 1 }).next(Date.now() - 500))
    await device2.publishAsync(next.topic, Buffer.from(next.frame), { qos: 1 })
    // the next alarm is relayed; by then the resend, published before it on the same connection, has been decided
    for (let i = 0; i < 400 && !again.some((a) => a.seq === next.seq); i++) await new Promise((resolve) => setTimeout(resolve, 5))
    const stats = await api.request<{ rejected: Record<string, number> }>('GET', '/admin/stats')
    const committedBeforeKill = stats.rejected['ING_ERR_REPLAY'] === 1
    // a resend taken again is relayed again, with the same key; one refused as a replay is not relayed
    expect(again.map((a) => [a.device, a.seq])).toEqual([...(committedBeforeKill ? [] : [['cal-c1', fall.seq]]), ['cal-c1', next.seq]])
    expect(stats.rejected).toEqual(committedBeforeKill ? { ING_ERR_REPLAY: 1 } : {})

    // the board resumes from before the alarm: the stream's replay carries it once, under the same key
    const login = await fetch(`http://127.0.0.1:${n.http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: 'care-c', user: 'care-c-resp', password: PASSWORD }) })
    const { token } = await login.json() as { token: string }
    const ctrl = new AbortController()
    const stream = await fetch(`http://127.0.0.1:${n.http}/api/alarms/stream`, { headers: { authorization: `Bearer ${token}`, 'last-event-id': String(before) }, signal: ctrl.signal })
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    while (!text.includes('event: ready')) text += (await reader.read()).value ?? ''
    ctrl.abort()
    const replayed = [...text.matchAll(/event: alarm\ndata: (\{.*\})\n/g)].map((m) => JSON.parse(m[1]!) as Notice)
    expect(replayed.filter((a) => a.seq === fall.seq).map((a) => [a.device, a.seq, a.kind])).toEqual([['cal-c1', fall.seq, 'fall_detected']])
    process.stderr.write(`the kill came ${committedBeforeKill ? 'after' : 'before'} the alarm's commit\n`)
  }, 120_000)
})
