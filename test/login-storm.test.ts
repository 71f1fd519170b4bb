/**
 * A login storm (wrong secrets over MQTT, wrong passwords over HTTP, from many
 * addresses and from one) against a node whose legitimate device keeps
 * publishing at QoS 1. Asserted are structural facts, never timings: device
 * secrets are keyed hashes that never reach the hash threads; password hashes
 * run on the hasher's worker threads and never more at once than configured,
 * excess checks are refused at once (HTTP 503 / 429, CONNACK 5 under back-off),
 * and every publish of the legitimate device is acknowledged.
 */
import { request } from 'node:http'
import { threadId } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createAdminClient } from '../src/api/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { connack, connectPacket, rawSocket } from './support/raw-mqtt.ts'
import { connectTls, count, publishAcked, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let device: Enrollment
const PASSWORD = 'correct horse battery staple'
const alarms = createAlarmModel(5)

beforeAll(async () => {
  dir = tempDir()
  // one hash thread and a short queue; cost 12 so a hash takes long enough for checks to pile up
  node = await startTestNode(dir.path, { HASH_THREADS: 1, HASH_QUEUE: 4, DEVICE_AUTH_COST: 12, AUTH_FREE_FAILURES: 5 })
  await node.registry.createTenant('care-s', 'S')
  device = await node.registry.enrollDevice({ tenant: 'care-s', device: 'cal-s1', family: 'calarm', patient: null })
  await createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken).request('POST', '/admin/users', { tenant: 'care-s', user: 'doc', role: 'clinician', password: PASSWORD })
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

async function mqttLogin (from: string, id: string, password: string): Promise<number | 'closed'> {
  const s = await rawSocket(node.mqtt!.port, from)
  const code = await connack(s, connectPacket({ clientId: id, username: id, password }))
  s.destroy()
  return code
}

async function httpLogin (from: string, user: string, password: string): Promise<{ status: number; retryAfter: string | undefined; error: string }> {
  const body = JSON.stringify({ tenant: 'care-s', user, password })
  return await new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: node.http.port, localAddress: from, method: 'POST', path: '/api/login', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => {
        const h = res.headers['retry-after']
        resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(h) ? h[0] : h, error: (JSON.parse(text) as { error?: string }).error ?? '' })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('login storm', () => {
  it('a device keeps getting PUBACKs while hundreds of bad logins hammer MQTT and HTTP; hashes stay on the bounded worker pool', async () => {
    const c = await connectTls(node, device.device, device.secret)
    const sealer = new DeviceSealer({ tenant: device.tenant, device: device.device, keyId: 1, key: Buffer.from(device.key, 'base64url') })
    let acked = 0
    let unacked = 0
    let storming = true
    const publishing = (async () => {
      while (storming) {
        const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
        if (await publishAcked(c, topic, frame)) acked++
        else { unacked++; break }
      }
    })()

    const started = performance.now()
    const storm = await Promise.all([
      // 200 wrong-secret connects, one from each of 200 addresses (no per-address back-off can help)
      Promise.all(Array.from({ length: 200 }, async (_, i) => await mqttLogin(`127.0.1.${i + 1}`, device.device, 'wrong secret'))),
      // 40 at once from one address: only as many are checked as it has free failures
      Promise.all(Array.from({ length: 40 }, async () => await mqttLogin('127.0.2.1', device.device, 'wrong secret'))),
      // 150 HTTP log-ins of unknown users from 150 addresses, and 50 at once from one address
      Promise.all(Array.from({ length: 150 }, async (_, i) => await httpLogin(`127.0.3.${i + 1}`, `nobody${i}`, 'wrong password'))),
      Promise.all(Array.from({ length: 50 }, async () => await httpLogin('127.0.4.1', 'ghost', 'wrong password'))),
    ])
    const stormS = (performance.now() - started) / 1000
    // then wrong passwords one after another from one address: after the free failures, 429 without a password check
    // (a new name each time: 'ghost' itself is locked by now, like any name with too many failures, known or not)
    const completedBefore = node.hasher.stats().completed
    const sequential: Array<Awaited<ReturnType<typeof httpLogin>>> = []
    for (let i = 0; i < 8; i++) sequential.push(await httpLogin('127.0.4.2', `ghost-seq${i}`, 'wrong password'))
    const checked = node.hasher.stats().completed - completedBefore
    storming = false
    await publishing
    const [mqttMany, mqttOne, httpMany, httpOne] = storm
    // checks one address can get in T seconds: its 5 free failures, one more, then one per expired back-off (1 s, 2 s, 4 s, ...)
    const perAddress = 5 + 1 + Math.floor(Math.log2(stormS + 1))
    const stats = node.hasher.stats()

    // a device secret is a keyed hash, checked on the node's thread in microseconds: every MQTT
    // attempt was answered, none waited for or was refused by the hash threads ...
    expect(mqttMany.every((code) => code === 4)).toBe(true)
    expect(node.metrics.rejected['ING_ERR_AUTH_BUSY'] ?? 0).toBe(0)
    expect(await count(node, 'rejected_messages', "reason = 'ING_ERR_AUTH_BUSY'")).toBe(0)
    // ... from one address, at most its free failures were checked, the rest refused by the back-off (CONNACK 5)
    expect(mqttOne.filter((code) => code === 4).length).toBeLessThanOrEqual(perAddress)
    expect(mqttOne.every((code) => code === 4 || code === 5)).toBe(true)
    expect(mqttOne.filter((code) => code === 5).length).toBeGreaterThan(0)
    // ... HTTP 503 with Retry-After when the hash queue is full, 429 with Retry-After from one busy address
    const busy = httpMany.filter((r) => r.status === 503)
    expect(busy.length).toBeGreaterThan(0)
    expect(busy.every((r) => r.error === 'ING_ERR_AUTH_BUSY' && r.retryAfter !== undefined)).toBe(true)
    expect(httpMany.every((r) => r.status === 401 || r.status === 503)).toBe(true)
    // (checked ones are 401, or 423 once 'ghost' has failed often enough to be locked, as an account would be)
    expect(httpOne.filter((r) => r.status === 401 || r.status === 423).length).toBeLessThanOrEqual(perAddress)
    expect(httpOne.every((r) => [401, 423, 429, 503].includes(r.status))).toBe(true)
    expect(sequential.map((r) => r.status)).toEqual([401, 401, 401, 401, 401, 401, 429, 429])
    expect(sequential.slice(6).every((r) => r.error === 'ING_ERR_AUTH_BACKOFF' && Number(r.retryAfter) >= 1)).toBe(true)
    expect(checked).toBe(6)
    expect(stats.refused).toBeGreaterThanOrEqual(busy.length)

    // never more hashes at once than threads, and all of them on the pool's worker threads, none on this (the node's) thread
    expect(stats.threads).toBe(1)
    expect(stats.maxInFlight).toBe(1)
    expect(stats.computedOn.length).toBe(1)
    expect(stats.computedOn).not.toContain(threadId)
    expect(stats.completed).toBeGreaterThan(0)

    // the device was acknowledged throughout
    expect(unacked).toBe(0)
    expect(acked).toBeGreaterThan(0)
    await c.endAsync()

    // once the storm is over, the right credentials get in
    expect(await mqttLogin('127.0.5.1', device.device, device.secret)).toBe(0)
    expect((await httpLogin('127.0.5.1', 'doc', PASSWORD)).status).toBe(200)
  }, 120_000)
})
