/**
 * kill -9 of one of three nodes while 30 alarm devices publish at QoS 1, spread
 * over the nodes; the devices of the dead node move to the others and resend
 * what got no PUBACK; the dead node restarts on its own disk and ships its
 * write-ahead log. Then every node's store is read (each has its own embedded
 * chDB: no ClickHouse server runs here, so "stored" is the union of the three):
 * every acknowledged (device, seq) is stored, and it is stored twice only if it
 * was in flight on the killed node (stored there before the kill, PUBACK lost,
 * resent and taken elsewhere: see README "Several nodes").
 */
import { afterAll, describe, expect } from 'vitest'
import type { MqttClient } from 'mqtt'
import { createAlarmModel, type DeviceSealer } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { connectTo, sealerOf, startClusterNode, stopNode, storedAlarms, until, type ClusterNode } from './support/cluster.ts'
import { publishAcked } from './support/node.ts'
import { startRedis, type RedisServer } from './support/redis.ts'
import { requireTool } from './support/tools.ts'

const withRedis = requireTool('redis-server')
const T = 'care-k'
let redis: RedisServer | null = null
const nodes: ClusterNode[] = []

afterAll(async () => {
  for (const n of nodes) { n.proc.kill('SIGKILL'); n.dir.remove() }
  await redis?.stop()
})

interface Publisher { e: Enrollment; sealer: DeviceSealer; client: MqttClient; node: number; acked: Set<number>; resent: Set<number>; stop: boolean; done: Promise<void> }

describe('a node killed under load', () => {
  withRedis('devices move to the other nodes; after the restart every acknowledged message is stored, twice only if it was in flight on the killed node', async () => {
    redis = await startRedis()
    for (const name of ['a', 'b', 'c']) nodes.push(await startClusterNode(redis.url, name))
    const a = nodes[0]!
    await a.api.request('POST', '/admin/tenants', { tenant: T, displayName: 'K' })
    const fleet: Enrollment[] = []
    for (let i = 0; i < 30; i++) fleet.push(await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: `cal-k${i}`, family: 'calarm' }))
    const alarms = createAlarmModel(9)
    const killed = 2
    const pubs: Publisher[] = await Promise.all(fleet.map(async (e, i) => {
      const node = i % 3
      const p: Publisher = { e, sealer: sealerOf(e), client: await connectTo(nodes[node]!, e), node, acked: new Set(), resent: new Set(), stop: false, done: Promise.resolve() }
      p.done = (async () => {
        let pending: { topic: string; frame: Uint8Array; seq: number } | null = null
        while (!p.stop) {
          const f: { topic: string; frame: Uint8Array; seq: number } = pending ?? p.sealer.seal('alarm', alarms.next(Date.now() - 1000))
          if (await publishAcked(p.client, f.topic, f.frame)) { p.acked.add(f.seq); pending = null; continue }
          // no PUBACK: the node is gone (or dropped us); keep the message and resend it on another node
          if (pending === null && p.node === killed) p.resent.add(f.seq)
          pending = f
          p.node = (p.node + 1) % 3 === killed ? (p.node + 2) % 3 : (p.node + 1) % 3
          for (;;) {
            try { p.client = await connectTo(nodes[p.node]!, e); break } catch { p.node = p.node === 0 ? 1 : 0 }
          }
        }
      })()
      return p
    }))
    const total = (): number => pubs.reduce((n, p) => n + p.acked.size, 0)
    await until(async () => total() >= 300)
    const c = nodes[killed]!
    c.proc.kill('SIGKILL')
    const atKill = total()
    await until(async () => total() >= atKill + 300 && pubs.every((p) => p.node !== killed))
    for (const p of pubs) p.stop = true
    await Promise.all(pubs.map(async (p) => { await p.done; await p.client.endAsync() }))

    // the killed node restarts on its own disk and ships its log; then every node stops and its store is read
    nodes[killed] = await startClusterNode(redis.url, 'c', c.dir)
    for (const n of nodes) await stopNode(n)
    const stored = new Map<string, number>()
    for (const n of nodes) for (const [k, v] of Object.entries(await storedAlarms(n.dir.path))) stored.set(k, (stored.get(k) ?? 0) + v)

    const missing: string[] = []
    const twiceNotInFlight: string[] = []
    for (const p of pubs) {
      for (const seq of p.acked) {
        const k = `${p.e.device}/${seq}`
        const n = stored.get(k) ?? 0
        if (n === 0) missing.push(k)
        if (n > 1 && !p.resent.has(seq)) twiceNotInFlight.push(k)
      }
    }
    expect(missing).toEqual([])
    expect(twiceNotInFlight).toEqual([])
  }, 240_000)
})
