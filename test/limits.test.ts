/** Per-device rate limit, per-tenant connection cap and back-off after failed logins, over real sockets. */
import fc from 'fast-check'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AuthBackoff, IdentityBuckets, TokenBucket } from '../src/broker/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { connack, connectPacket, rawSocket } from './support/raw-mqtt.ts'
import { connectTls, count, publishAcked, startTestNode, tempDir } from './support/node.ts'

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
  await node.registry.createTenant('care-r', 'R')
  for (let i = 0; i < 2; i++) devices.push(await node.registry.enrollDevice({ tenant: 'care-r', device: `cal-r${i}`, family: 'calarm', patient: null }))
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

  it('limits a device, not a connection: reconnecting does not refill its bucket, and another device keeps its own', async () => {
    const [d, other] = [devices[5]!, devices[6]!]
    const { PUBLISH_RATE: rate, PUBLISH_BURST: burst } = node.config
    const sealer = new DeviceSealer({ tenant: d.tenant, device: d.device, keyId: 1, key: Buffer.from(d.key, 'base64url') })
    const rateRefusals = node.metrics.rejected['ING_ERR_RATE'] ?? 0
    let acked = 0
    let sent = 0
    const started = performance.now()
    // each connection publishes until the broker cuts it off for its rate, then the device reconnects
    for (let cycle = 0; cycle < 12; cycle++) {
      const c = await connectTls(node, d.device, d.secret)
      for (let i = 0; i < 3 * burst; i++) {
        const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
        sent++
        if (await publishAcked(c, topic, frame)) acked++
        else break
      }
      await c.endAsync(true)
    }
    const elapsedS = (performance.now() - started) / 1000
    const allowed = burst + rate * elapsedS + 2
    const stored = await count(node, 'alarm_events', 'device_id = {d:String}', { d: d.device })
    // a bucket per connection would have let 12 × burst through
    expect(12 * burst).toBeGreaterThan(allowed)
    expect(acked).toBeLessThanOrEqual(allowed)
    expect(stored).toBeLessThanOrEqual(allowed)
    expect(stored).toBeGreaterThanOrEqual(burst)
    expect(sent).toBeGreaterThan(stored)
    expect((node.metrics.rejected['ING_ERR_RATE'] ?? 0) - rateRefusals).toBeGreaterThanOrEqual(12)

    // the other device of the same tenant still has its whole burst
    const c = await connectTls(node, other.device, other.secret)
    const otherSealer = new DeviceSealer({ tenant: other.tenant, device: other.device, keyId: 1, key: Buffer.from(other.key, 'base64url') })
    let otherAcked = 0
    for (let i = 0; i < burst; i++) {
      const { topic, frame } = otherSealer.seal('alarm', alarms.next(Date.now() - 1000))
      if (await publishAcked(c, topic, frame)) otherAcked++
    }
    expect(otherAcked).toBe(burst)
    await c.endAsync(true)
  }, 60_000)

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

  const attemptFrom = async (from: string, device: string, password: string): Promise<number | 'closed'> => {
    const s = await rawSocket(node.mqtt!.port, from)
    const code = await connack(s, connectPacket({ clientId: device, username: device, password }))
    s.destroy()
    return code
  }
  const backoffRows = async (from: string): Promise<number> =>
    await count(node, 'rejected_messages', "reason = 'ING_ERR_AUTH_BACKOFF' AND remote_address = {a:String}", { a: from })

  it('a mutual-TLS login from an address does not forgive the wrong passwords tried from it', async () => {
    const from = '127.0.0.4'
    const [guessed, enrolled] = [devices[1]!, devices[2]!]
    // 3 free failures, then 3 more, each after the previous back-off has run out: the back-off is now 4 s
    for (let failures = 0; failures < 6;) {
      const code = await attemptFrom(from, guessed.device, 'wrong')
      if (code === 4) failures++
      else { expect(code).toBe(5); await new Promise((resolve) => setTimeout(resolve, 250)) }
    }
    const issued = await node.registry.issueCertificate(enrolled.tenant, enrolled.device)
    // localAddress is passed through to tls.connect (mqtt.js does not declare it)
    const c = await mqtt.connectAsync({
      protocol: 'mqtts', host: '127.0.0.1', port: node.mqttsMutual!.port, ca: node.caPem!, servername: 'localhost',
      key: issued.keyPem!, cert: issued.certPem, clientId: enrolled.device, reconnectPeriod: 0, connectTimeout: 5000,
      ...{ localAddress: from },
    })
    expect(c.connected).toBe(true)
    await c.endAsync()
    const before = await backoffRows(from)
    // still backing off: refused without checking the password (CONNACK 5, not 4)
    expect(await attemptFrom(from, guessed.device, 'wrong')).toBe(5)
    expect(await backoffRows(from)).toBe(before + 1)
  })

  it('a correct secret forgives only that device\'s own failures from the address, not those against other devices', async () => {
    const [target, mine] = [devices[1]!, devices[2]!]
    const from = '127.0.0.5'
    for (let i = 0; i < 3; i++) expect(await attemptFrom(from, target.device, 'wrong')).toBe(4) // the free failures
    expect(await attemptFrom(from, mine.device, mine.secret)).toBe(0) // a valid secret of another device
    expect(await attemptFrom(from, target.device, 'wrong')).toBe(4) // 4th failure: the back-off starts
    expect(await attemptFrom(from, target.device, 'wrong')).toBe(5)
    expect(await backoffRows(from)).toBe(1)

    const typos = '127.0.0.6'
    for (let i = 0; i < 3; i++) expect(await attemptFrom(typos, mine.device, 'wrong')).toBe(4)
    expect(await attemptFrom(typos, mine.device, mine.secret)).toBe(0) // forgives its own three
    for (let i = 0; i < 3; i++) expect(await attemptFrom(typos, mine.device, 'wrong')).toBe(4)
    expect(await attemptFrom(typos, mine.device, mine.secret)).toBe(0)
  })
})

describe('limit primitives', () => {
  it('identity buckets: one bucket per device whatever the connections, dropped only when unheld and full', () => {
    const b = new IdentityBuckets(1, 3, 2)
    const first = b.acquire('t', 'd', 0)
    const second = b.acquire('t', 'd', 0)
    expect(second.bucket).toBe(first.bucket)
    for (let i = 0; i < 3; i++) expect(first.bucket.take(0)).toBe(true)
    expect(second.bucket.take(0)).toBe(false)
    first.release(); second.release(); first.release()
    b.sweep(1000) // one token back of three: not full, kept
    expect(b.acquire('t', 'd', 1000).bucket).toBe(first.bucket)
    b.acquire('t', 'e', 0).release()
    b.sweep(10_000) // 'd' is held again; 'e' is unheld and full
    expect(b.size).toBe(1)
    // many short-lived identities: the map stays bounded by the sweeps
    for (let i = 0; i < 10_000; i++) b.acquire('t', `x${i}`, 20_000 + i * 10_000).release()
    expect(b.size).toBeLessThan(10)
  })

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

  it('back-off doubles per failure past the free ones, capped, and is forgotten after a quiet period', () => {
    const b = new AuthBackoff(2, 8)
    b.fail('a', 'u', 0); b.fail('a', 'u', 0)
    expect(b.waitMs('a', 0)).toBe(0)
    const waits = [1, 2, 4, 8, 8].map(() => { b.fail('a', 'u', 0); return b.waitMs('a', 0) })
    expect(waits).toEqual([1000, 2000, 4000, 8000, 8000])
    expect(b.waitMs('a', 8000)).toBe(0)
    b.fail('a', 'u', 8000) // the record is still there: the next failure waits the longest again
    expect(b.waitMs('a', 8000)).toBe(8000)
    b.fail('a', 'u', 16_000 + 8000 + 1) // quiet for 8 s after the back-off ended: starts clean
    expect(b.waitMs('a', 24_001)).toBe(0)
    expect(b.size).toBe(1)
  })

  it('a correct password forgives only its own user\'s failures from that source', () => {
    const b = new AuthBackoff(2, 60)
    b.fail('a', 'victim', 0); b.fail('a', 'victim', 0)
    b.succeed('a', 'attacker', 0) // a valid secret of another identity forgives nothing
    b.fail('a', 'victim', 0)
    expect(b.waitMs('a', 0)).toBe(1000)
    b.fail('b', 'me', 0); b.fail('b', 'me', 0)
    b.succeed('b', 'me', 0) // my own typos are forgiven
    b.fail('b', 'me', 0)
    expect(b.waitMs('b', 0)).toBe(0)
    // past USERS_PER_SOURCE names, failures still count but cannot be forgiven
    for (let i = 0; i < AuthBackoff.USERS_PER_SOURCE + 2; i++) b.fail('c', `n${i}`, 0)
    for (let i = 0; i < AuthBackoff.USERS_PER_SOURCE + 2; i++) b.succeed('c', `n${i}`, 0)
    b.fail('c', 'x', 0) // the two untracked failures stay: 3 > 2 free
    expect(b.waitMs('c', 0)).toBe(1000)
  })

  it('a source that has failed gets at most as many checks at once as it has free failures left, at least one', () => {
    const b = new AuthBackoff(3, 60)
    // no failures yet: not capped (a fleet behind one address reconnecting at once)
    expect(Array.from({ length: 10 }, () => b.begin('a', 0).ok).every(Boolean)).toBe(true)
    for (let i = 0; i < 9; i++) b.succeed('a', `d${i}`, 0)
    b.fail('a', 'u', 0) // 1 failure, none running: 2 at once
    expect([0, 1, 2].map(() => b.begin('a', 0).ok)).toEqual([true, true, false])
    b.abandon('a', 0) // one did not happen: 1 running
    expect(b.begin('a', 0).ok).toBe(true)
    b.fail('a', 'u', 0); b.fail('a', 'u', 0) // 3 failures, none running: one at a time from now on
    expect(b.begin('a', 0).ok).toBe(true)
    expect(b.begin('a', 0)).toEqual({ ok: false, reason: 'busy', waitMs: 1000 })
    b.fail('a', 'u', 0)
    expect(b.begin('a', 0)).toEqual({ ok: false, reason: 'backoff', waitMs: 1000 })
  })

  it('keeps at most maxSources sources', () => {
    const b = new AuthBackoff(1, 60, 100)
    for (let i = 0; i < 1000; i++) { b.fail(`s${i}`, 'u', 0); b.fail(`s${i}`, 'u', 0) }
    expect(b.size).toBeLessThanOrEqual(100)
    expect(b.waitMs('s999', 0)).toBe(1000)
  })
})
