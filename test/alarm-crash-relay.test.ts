/**
 * An alarm relayed just before the node dies (kill -9) reaches the responder
 * again after the restart with the same (device, sequence number) key, which
 * is what a responder de-duplicates by; the device's resend of the same frame
 * is refused as a replay and relayed no second time.
 *
 * Why relaying on the alarm lane's commit is safe: the notice goes out only
 * once the alarm is durable in its own log lane (never for a refused message:
 * refusals return before anything is written), so a restart finds it in the
 * log, ships it and restores the device's replay window with it. A responder
 * may therefore see an alarm twice — live before the crash, and again from the
 * stream's replay after it — but never one that was not stored. Real node in
 * a child process, real TLS, mqtt.js devices, the SSE stream over HTTP.
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
  it('relays again with the same (device, seq) after kill -9, and refuses the device\'s resend as a replay', async () => {
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

    // restart on the same data directory: the responder's board resumes from before the alarm
    n = await start()
    api = createAdminClient(`http://127.0.0.1:${n.http}`, TOKEN)
    const login = await fetch(`http://127.0.0.1:${n.http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: 'care-c', user: 'care-c-resp', password: PASSWORD }) })
    const { token } = await login.json() as { token: string }
    const ctrl = new AbortController()
    const stream = await fetch(`http://127.0.0.1:${n.http}/api/alarms/stream`, { headers: { authorization: `Bearer ${token}`, 'last-event-id': String(before) }, signal: ctrl.signal })
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    while (!text.includes('event: ready')) text += (await reader.read()).value ?? ''
    ctrl.abort()
    const replayed = [...text.matchAll(/event: alarm\ndata: (\{.*\})\n/g)].map((m) => JSON.parse(m[1]!) as Notice)
    expect(replayed.map((a) => [a.device, a.seq, a.kind])).toEqual([['cal-c1', fall.seq, 'fall_detected']])

    // the device resends what it never saw acknowledged: refused as a replay, not relayed again
    const again: Notice[] = []
    const responder2 = await connect(n, caPem, resp)
    responder2.on('message', (_t, p) => { again.push(JSON.parse(p.toString()) as Notice) })
    await responder2.subscribeAsync('v1/care-c/alerts', { qos: 1 })
    const device2 = await connect(n, caPem, cal)
    await device2.publishAsync(fall.topic, Buffer.from(fall.frame), { qos: 1 })
    const next = sealer.seal('alarm', createAlarmModel(6, { pressProbability: 1 }).next(Date.now() - 500))
    await device2.publishAsync(next.topic, Buffer.from(next.frame), { qos: 1 })
    // the next alarm is relayed; by then the resend, published before it on the same connection, has been decided
    for (let i = 0; i < 400 && again.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(again.map((a) => [a.device, a.seq])).toEqual([['cal-c1', next.seq]])
    const stats = await api.request<{ rejected: Record<string, number> }>('GET', '/admin/stats')
    expect(stats.rejected).toEqual({ ING_ERR_REPLAY: 1 })
  }, 120_000)
})
