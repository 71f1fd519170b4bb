/** Per-client rate limit, per-tenant connection cap and back-off after failed logins, over real sockets. */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AuthBackoff, TokenBucket } from '../src/broker/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { connack, connectPacket, rawSocket } from './support/raw-mqtt.ts'
import { connectTls, count, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const devices: Enrollment[] = []
const alarms = createAlarmModel(2)

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path, { PUBLISH_RATE: 5, PUBLISH_BURST: 10, MAX_CONNECTIONS_PER_TENANT: 3, AUTH_FREE_FAILURES: 3, AUTH_MAX_BACKOFF_S: 60 })
  await node.registry.createTenant('care-l', 'L')
  await node.registry.createTenant('care-m', 'M')
  for (let i = 0; i < 4; i++) devices.push(await node.registry.enrollDevice({ tenant: 'care-l', device: `cal-l${i}`, family: 'calarm', patient: null }))
  devices.push(await node.registry.enrollDevice({ tenant: 'care-m', device: 'cal-m0', family: 'calarm', patient: null }))
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('limits', () => {
  it('disconnects a client that publishes above its rate once its burst is spent, and records why', async () => {
    const d = devices[0]!
    const c = await connectTls(node, d.device, d.secret)
    const sealer = new DeviceSealer({ tenant: d.tenant, device: d.device, keyId: 1, key: Buffer.from(d.key, 'base64url') })
    const closed = new Promise<void>((resolve) => { c.once('close', () => { resolve() }) })
    for (let i = 0; i < 30; i++) {
      const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
      c.publish(topic, Buffer.from(frame), { qos: 1 })
    }
    await closed
    await node.storage.flush()
    // the burst (10) was served, the rest refused
    const stored = await count(node, 'alarm_events', 'device_id = {d:String}', { d: d.device })
    expect(stored).toBeGreaterThanOrEqual(10)
    expect(stored).toBeLessThan(30)
    expect(node.metrics.rejected['ING_ERR_RATE']).toBeGreaterThanOrEqual(1)
    expect(await count(node, 'rejected_messages', "reason = 'ING_ERR_RATE' AND device_id = {d:String}", { d: d.device })).toBeGreaterThanOrEqual(1)
    await c.endAsync(true)
  })

  it('caps authenticated connections per tenant without affecting other tenants', async () => {
    const open = await Promise.all(devices.slice(0, 3).map((d) => connectTls(node, d.device, d.secret)))
    await expect(connectTls(node, devices[3]!.device, devices[3]!.secret)).rejects.toThrow(/Server unavailable/i)
    const other = await connectTls(node, 'cal-m0', devices[4]!.secret)
    expect(node.metrics.rejected['ING_ERR_CONN_LIMIT']).toBe(1)
    await open[0]!.endAsync()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const now = await connectTls(node, devices[3]!.device, devices[3]!.secret)
    await Promise.all([...open.slice(1), other, now].map((c) => c.endAsync()))
  })

  it('backs off a source address after repeated failed logins, even for the right secret, and not other addresses', async () => {
    const d = devices[1]!
    const attempt = async (password: string, from: string): Promise<number | 'closed'> => {
      const s = await rawSocket(node.mqtt!.port, from)
      const code = await connack(s, connectPacket({ clientId: d.device, username: d.device, password }))
      s.destroy()
      return code
    }
    for (let i = 0; i < 3; i++) expect(await attempt('wrong', '127.0.0.2')).toBe(4)
    expect(await attempt('wrong', '127.0.0.2')).toBe(4) // the 4th failure starts the back-off
    expect(await attempt(d.secret, '127.0.0.2')).toBe(5) // refused without checking the secret
    expect(node.metrics.rejected['ING_ERR_AUTH_BACKOFF']).toBe(1)
    expect(await attempt(d.secret, '127.0.0.3')).toBe(0) // another address is unaffected
  })
})

describe('limit primitives', () => {
  it('token bucket admits burst + rate × elapsed, never more', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 50 }), fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 200 }), (rate, burst, gaps) => {
      const b = new TokenBucket(rate, burst, 0)
      let t = 0
      let admitted = 0
      for (const g of gaps) {
        t += g
        if (b.take(t)) admitted++
        expect(admitted).toBeLessThanOrEqual(burst + Math.floor((t / 1000) * rate) + 1)
      }
    }))
  })

  it('back-off doubles per failure past the free ones, capped, and clears on success', () => {
    const b = new AuthBackoff(2, 8)
    b.fail('a', 0); b.fail('a', 0)
    expect(b.waitMs('a', 0)).toBe(0)
    const waits = [1, 2, 4, 8, 8].map(() => { b.fail('a', 0); return b.waitMs('a', 0) })
    expect(waits).toEqual([1000, 2000, 4000, 8000, 8000])
    b.succeed('a')
    expect(b.waitMs('a', 0)).toBe(0)
  })
})
