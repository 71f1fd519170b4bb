/**
 * Two vitalflow nodes (child processes, each its own embedded chDB: no
 * ClickHouse server runs here) joined over a real redis-server, behind a real
 * Debian haproxy that balances plain MQTT round robin and sends a PROXY
 * protocol v1 header. A device whose next connection lands on the other node
 * keeps its replay protection.
 */
import { afterAll, describe, expect } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { createAlarmModel } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { sealerOf, startClusterNode, statsOf, type ClusterNode } from './support/cluster.ts'
import { publishAcked, tempDir } from './support/node.ts'
import { startHaproxy, type Haproxy } from './support/haproxy.ts'
import { startRedis, type RedisServer } from './support/redis.ts'
import { requireTool } from './support/tools.ts'

const withBoth = onBoth()
function onBoth (): ReturnType<typeof requireTool> {
  requireTool('redis-server')
  return requireTool('haproxy')
}
const BALANCER = '127.0.0.9'
const T = 'care-hp'
let redis: RedisServer | null = null
let haproxy: Haproxy | null = null
const nodes: ClusterNode[] = []
const dir = tempDir('vf-cluster-hp-')

afterAll(async () => {
  await haproxy?.stop()
  for (const n of nodes) { n.proc.kill('SIGKILL'); n.dir.remove() }
  await redis?.stop()
  dir.remove()
})

async function viaBalancer (port: number, e: Enrollment): Promise<MqttClient> {
  for (;;) {
    try {
      const c = await mqtt.connectAsync({ host: '127.0.0.1', port, clientId: e.device, username: e.device, password: e.secret, clean: true, reconnectPeriod: 0, connectTimeout: 10_000 })
      c.on('error', () => {})
      return c
    } catch { await new Promise((resolve) => setTimeout(resolve, 50)) } // haproxy still starting
  }
}

describe('behind haproxy', () => {
  withBoth('a frame taken on one node through the balancer is a replay on the other', async () => {
    redis = await startRedis()
    const env = { VF_PROXY_PROTOCOL_FROM: BALANCER }
    for (const name of ['a', 'b']) nodes.push(await startClusterNode(redis.url, name, undefined, env))
    haproxy = await startHaproxy({ dir: dir.path, servers: nodes.map((n) => ({ name: n.name, port: n.mqtt })), proxy: 'v1', source: BALANCER })
    const front = haproxy.port
    const a = nodes[0]!
    await a.api.request('POST', '/admin/tenants', { tenant: T, displayName: 'HP' })
    const e = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'cal-hp', family: 'calarm' })
    const f = sealerOf(e).seal('alarm', createAlarmModel(11).next(Date.now() - 1000))
    const took = async (): Promise<number[]> => await Promise.all(nodes.map(async (n) => (await statsOf(n)).accepted['alarm_events'] ?? 0))
    const replays = async (): Promise<number[]> => await Promise.all(nodes.map(async (n) => (await statsOf(n)).rejected['ING_ERR_REPLAY'] ?? 0))

    const c1 = await viaBalancer(front, e)
    expect(await publishAcked(c1, f.topic, f.frame)).toBe(true)
    await c1.endAsync()
    const first = (await took()).findIndex((n) => n === 1)
    expect(first).toBeGreaterThanOrEqual(0)
    // reconnect through the balancer until a connection lands on the other node, and replay the frame there
    const other = 1 - first
    const before = await replays()
    for (;;) {
      const c = await viaBalancer(front, e)
      expect(await publishAcked(c, f.topic, f.frame)).toBe(true) // acknowledged, as every replay is, and not stored
      await c.endAsync()
      const now = await replays()
      if (now[other]! > before[other]!) break
      expect(now[first]! - before[first]!).toBeGreaterThan(0) // it landed on the first node again: a local replay
    }
    expect((await took())[other]).toBe(0)
  }, 120_000)
})
