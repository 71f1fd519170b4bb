/**
 * Several vitalflow nodes joined over a real redis-server (Debian), each a child
 * process (`node --import tsx src/main.ts`) with its own embedded chDB data
 * directory: no ClickHouse server can run here, so each node stores its own rows
 * and the registry rows (tenants, patients, devices, keys, bindings, consent)
 * reach the other nodes' stores through the change feed, which stores them
 * there too (embedded mode; with a server they are shared and the feed only
 * tells the nodes to reload). Devices connect to a node of the test's choosing,
 * as HAProxy would send them, over TLS with that node's CA.
 */
import { afterAll, beforeAll, describe, expect } from 'vitest'
import { Redis } from 'ioredis'
import { CONSENT_CATEGORIES } from '../src/consent/index.ts'
import { createAlarmModel, createBraceletModel } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { connectTo as connect, sealerOf, startClusterNode, statsOf as stats, until, type ClusterNode } from './support/cluster.ts'
import { publishAcked } from './support/node.ts'
import { startRedis, type RedisServer } from './support/redis.ts'
import { requireTool } from './support/tools.ts'

const withRedis = requireTool('redis-server')
const T = 'care-c'

let redis: RedisServer
const nodes: ClusterNode[] = []

beforeAll(async () => {
  redis = await startRedis()
  for (const name of ['a', 'b', 'c']) nodes.push(await startClusterNode(redis.url, name))
  await nodes[0]!.api.request('POST', '/admin/tenants', { tenant: T, displayName: 'C' })
}, 120_000)

afterAll(async () => {
  for (const n of nodes) { n.proc.kill('SIGKILL'); n.dir.remove() }
  await redis?.stop()
})

describe('several nodes over Redis', () => {
  withRedis('a frame accepted on node A is refused as a replay on node B (the device enrolled on A only)', async () => {
    const [a, b] = [nodes[0]!, nodes[1]!]
    const e = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'cal-replay', family: 'calarm' })
    const s = sealerOf(e)
    const f = s.seal('alarm', createAlarmModel(1).next(Date.now() - 1000))
    const ca = await connect(a, e)
    expect(await publishAcked(ca, f.topic, f.frame)).toBe(true)
    await ca.endAsync()
    const before = (await stats(b)).rejected['ING_ERR_REPLAY'] ?? 0
    const cb = await connect(b, e)
    expect(await publishAcked(cb, f.topic, f.frame)).toBe(true) // a replay is acknowledged (no negative PUBACK in 3.1.1) and not stored
    const fresh = s.seal('alarm', createAlarmModel(2).next(Date.now() - 500))
    expect(await publishAcked(cb, fresh.topic, fresh.frame)).toBe(true)
    await cb.endAsync()
    const after = await stats(b)
    expect((after.rejected['ING_ERR_REPLAY'] ?? 0) - before).toBe(1)
    expect(after.rowsStored['alarm_events'] ?? 0).toBeGreaterThanOrEqual(1)
  }, 60_000)

  withRedis('a second connection with the same client id on another node closes the first', async () => {
    const [a, b] = [nodes[0]!, nodes[1]!]
    const e = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'cal-takeover', family: 'calarm' })
    const first = await connect(a, e)
    const closed = new Promise<void>((resolve) => { first.once('close', () => { resolve() }) })
    const second = await connect(b, e)
    await closed
    expect(first.connected).toBe(false)
    expect(second.connected).toBe(true)
    await second.endAsync()
  }, 60_000)

  withRedis('a withdrawal answered by node A filters the very next message on node C', async () => {
    const [a, c] = [nodes[0]!, nodes[2]!]
    await a.api.request('POST', `/admin/tenants/${T}/patients`, { patient: 'p-w' })
    for (const category of CONSENT_CATEGORIES) await a.api.request('POST', `/admin/tenants/${T}/patients/p-w/consent`, { category, action: 'grant', source: 'paper_form', validFromMs: Date.now() - 3_600_000 })
    const e = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'br-w', family: 'bracelet', patient: 'p-w' })
    const s = sealerOf(e)
    const bracelet = createBraceletModel(3, { asleep: () => false })
    const cc = await connect(c, e)
    const t0 = Date.now() - 120_000
    const before = (await stats(c)).rowsFiltered
    const f1 = s.seal('vitals', bracelet.nextBatch(t0))
    expect(await publishAcked(cc, f1.topic, f1.frame)).toBe(true)
    expect((await stats(c)).rowsFiltered).toBe(before) // granted: stored, not filtered (the grant came over the feed)
    await a.api.request('POST', `/admin/tenants/${T}/patients/p-w/consent`, { category: 'vitals', action: 'withdraw', source: 'app' })
    const f2 = s.seal('vitals', bracelet.nextBatch(t0 + 60_000))
    expect(await publishAcked(cc, f2.topic, f2.frame)).toBe(true)
    expect((await stats(c)).rowsFiltered).toBeGreaterThan(before)
    await cc.endAsync()
  }, 60_000)

  withRedis('an alarm published on node B reaches a responder subscribed on node A', async () => {
    const [a, b] = [nodes[0]!, nodes[1]!]
    const responder = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'resp-1', family: 'responder' })
    const e = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'cal-fall', family: 'calarm' })
    const r = await connect(a, responder)
    await r.subscribeAsync(`v1/${T}/alerts`, { qos: 1 })
    const got = new Promise<{ device: string; seq: number }>((resolve) => { r.on('message', (_t, p) => { resolve(JSON.parse(p.toString()) as { device: string; seq: number }) }) })
    const d = await connect(b, e)
    const f = sealerOf(e).seal('alarm', createAlarmModel(4, { pressProbability: 1 }).next(Date.now() - 1000))
    expect(await publishAcked(d, f.topic, f.frame)).toBe(true)
    const notice = await got
    expect(notice.device).toBe('cal-fall')
    expect(Number(notice.seq)).toBe(f.seq)
    await d.endAsync()
    await r.endAsync()
  }, 60_000)

  withRedis('a change that a live node does not apply fails the request with 503 ING_ERR_CLUSTER instead of answering early', async () => {
    const a = nodes[0]!
    await a.api.request('POST', `/admin/tenants/${T}/patients`, { patient: 'p-b' })
    // a node that is live (its key is there) but never applies anything: the barrier must not pass
    const r = new Redis(redis.url)
    await r.set('vf:live:ghost', '1', 'PX', 600_000)
    await expect(a.api.request('POST', `/admin/tenants/${T}/patients/p-b/consent`, { category: 'vitals', action: 'withdraw', source: 'app' }))
      .rejects.toThrow(/ING_ERR_CLUSTER|503/)
    await r.del('vf:live:ghost')
    await a.api.request('POST', `/admin/tenants/${T}/patients/p-b/consent`, { category: 'vitals', action: 'grant', source: 'app' })
    r.disconnect()
  }, 60_000)

  withRedis('a responder that was offline (persistent session) gets the alarm it missed when it reconnects to another node', async () => {
    const [a, b, c] = [nodes[0]!, nodes[1]!, nodes[2]!]
    const responder = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'resp-off', family: 'responder' })
    const e = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'cal-off', family: 'calarm' })
    const r1 = await connect(a, responder, { clean: false })
    await r1.subscribeAsync(`v1/${T}/alerts`, { qos: 1 })
    await r1.endAsync()
    const d = await connect(b, e)
    const f = sealerOf(e).seal('alarm', createAlarmModel(7, { pressProbability: 1 }).next(Date.now() - 1000))
    expect(await publishAcked(d, f.topic, f.frame)).toBe(true)
    await d.endAsync()
    const r2 = await connect(c, responder, { clean: false })
    const notice = await new Promise<{ device: string; seq: number }>((resolve) => { r2.on('message', (_t, p) => { resolve(JSON.parse(p.toString()) as { device: string; seq: number }) }) })
    expect(notice.device).toBe('cal-off')
    expect(Number(notice.seq)).toBe(f.seq)
    await r2.endAsync()
  }, 60_000)

  withRedis('Redis down: on open connections consent-based data waits unacknowledged and alarms go on; when it is back, vitals are taken again and the marks written meanwhile reach Redis', async () => {
    const [a, b] = [nodes[0]!, nodes[1]!]
    await a.api.request('POST', `/admin/tenants/${T}/patients`, { patient: 'p-r' })
    await a.api.request('POST', `/admin/tenants/${T}/patients/p-r/consent`, { category: 'vitals', action: 'grant', source: 'paper_form' })
    const br = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'br-r', family: 'bracelet', patient: 'p-r' })
    const al = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'cal-r', family: 'calarm', patient: 'p-r' })
    const bs = sealerOf(br)
    const as = sealerOf(al)
    const bracelet = createBraceletModel(5, { asleep: () => false })
    const alarms = createAlarmModel(6)
    // connected before: aedes' CONNECT itself needs Redis (session store, takeover notice), so no new session starts while it is down
    const cb = await connect(b, br)
    const ca = await connect(b, al)
    // aedes ends a CONNECT with a Redis read (the session's queued messages) after the CONNACK, and closes the
    // client if Redis fails it; it reads the client's next packet only once that is done. One acknowledged
    // message each, so Redis goes down after both sessions are set up, not during that read.
    const firstVitals = bs.seal('vitals', bracelet.nextBatch(Date.now() - 180_000))
    const firstAlarm = as.seal('alarm', alarms.next(Date.now() - 2000))
    expect(await publishAcked(cb, firstVitals.topic, firstVitals.frame)).toBe(true)
    expect(await publishAcked(ca, firstAlarm.topic, firstAlarm.frame)).toBe(true)
    const port = redis.port
    await redis.stop()
    await until(async () => (await stats(b)).cluster?.feedCurrent === false)
    // a new login is refused before aedes touches its session store: without the device's marks this
    // node could take, as new, a frame another node took (CONNACK 3, recorded as ING_ERR_CLUSTER)
    const refusedBefore = (await stats(a)).rejected['ING_ERR_CLUSTER'] ?? 0
    await expect(connect(a, al)).rejects.toMatchObject({ code: 3 })
    expect(((await stats(a)).rejected['ING_ERR_CLUSTER'] ?? 0) - refusedBefore).toBe(1)
    const v = bs.seal('vitals', bracelet.nextBatch(Date.now() - 120_000))
    expect(await publishAcked(cb, v.topic, v.frame)).toBe(false) // no PUBACK: the node drops the connection, the device keeps the message
    const alarm = as.seal('alarm', alarms.next(Date.now() - 1000))
    expect(await publishAcked(ca, alarm.topic, alarm.frame)).toBe(true)
    expect((await stats(b)).cluster?.marksWaiting).toBeGreaterThan(0)
    await ca.endAsync()
    redis = await startRedis(port)
    await until(async () => { const s = (await stats(b)).cluster; return s?.feedCurrent === true && s.marksWaiting === 0 })
    const again = await connect(b, br)
    expect(await publishAcked(again, v.topic, v.frame)).toBe(true)
    await again.endAsync()
    // the alarm accepted on B while Redis was down is a replay on A now (once A reads Redis again:
    // each node's links come back on their own retry schedule)
    await until(async () => (await stats(a)).cluster?.redis === true)
    const before = (await stats(a)).rejected['ING_ERR_REPLAY'] ?? 0
    const onA = await connect(a, al)
    expect(await publishAcked(onA, alarm.topic, alarm.frame)).toBe(true)
    await onA.endAsync()
    expect(((await stats(a)).rejected['ING_ERR_REPLAY'] ?? 0) - before).toBe(1)
  }, 90_000)
})
