/**
 * Mutual-TLS logins on several nodes over a real redis-server (Debian): a frame
 * a device sent with its client certificate to node A is a replay on node B,
 * and while Redis is out of reach a certificate login is refused (CONNACK 3),
 * never admitted without the device's replay marks.
 *
 * Each node is a child process with its own data directory (embedded chDB; no
 * ClickHouse server runs here). A tenant CA lives in a node's data directory,
 * so a deployment shares it between nodes (one volume, or copied when the
 * tenant is created); here B starts on a data directory that holds A's.
 */
import { cpSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { createAlarmModel } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { sealerOf, startClusterNode, statsOf as stats, until, type ClusterNode } from './support/cluster.ts'
import { publishAcked, tempDir } from './support/node.ts'
import { startRedis, type RedisServer } from './support/redis.ts'
import { requireTool } from './support/tools.ts'

const withRedis = requireTool('redis-server')
const T = 'care-m'
const MTLS = { VF_MQTTS_MTLS: 'true', VF_MQTTS_MTLS_PORT: '0' }

let redis: RedisServer
const nodes: ClusterNode[] = []

async function connectMutual (n: ClusterNode, device: string, issued: { certPem: string; keyPem: string }): Promise<MqttClient> {
  const c = await mqtt.connectAsync({
    protocol: 'mqtts', host: '127.0.0.1', port: n.mqttsMutual, ca: n.ca, servername: 'localhost', clientId: device,
    cert: issued.certPem, key: issued.keyPem, reconnectPeriod: 0, connectTimeout: 10_000,
  })
  c.on('error', () => {})
  return c
}

beforeAll(async () => {
  redis = await startRedis()
  const a = await startClusterNode(redis.url, 'a', undefined, MTLS)
  nodes.push(a)
  await a.api.request('POST', '/admin/tenants', { tenant: T, displayName: 'M' })
  // the tenant's CA as a shared volume would hold it
  await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'cal-ca', family: 'calarm' })
  await a.api.request('POST', `/admin/tenants/${T}/devices/cal-ca/certificate`, {})
  const bDir = tempDir('vf-cluster-b-')
  cpSync(join(a.dir.path, 'tenant-ca', T), join(bDir.path, 'tenant-ca', T), { recursive: true })
  nodes.push(await startClusterNode(redis.url, 'b', bDir, MTLS))
}, 120_000)

afterAll(async () => {
  for (const n of nodes) { n.proc.kill('SIGKILL'); n.dir.remove() }
  await redis?.stop()
})

describe('mutual TLS on several nodes', () => {
  withRedis('a frame sent with a client certificate to node A is a replay on node B; with Redis down the login is refused', async () => {
    const [a, b] = [nodes[0]!, nodes[1]!]
    expect(a.mqttsMutual).toBeGreaterThan(0)
    const e = await a.api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: 'cal-m', family: 'calarm' })
    const issued = await a.api.request<{ certPem: string; keyPem: string }>('POST', `/admin/tenants/${T}/devices/cal-m/certificate`, {})
    const s = sealerOf(e)
    const f = s.seal('alarm', createAlarmModel(1).next(Date.now() - 1000))
    const onA = await connectMutual(a, 'cal-m', issued)
    expect(await publishAcked(onA, f.topic, f.frame)).toBe(true)
    await onA.endAsync()

    const before = (await stats(b)).rejected['ING_ERR_REPLAY'] ?? 0
    const onB = await connectMutual(b, 'cal-m', issued)
    expect(await publishAcked(onB, f.topic, f.frame)).toBe(true) // a replay is acknowledged (3.1.1) and not stored
    const fresh = s.seal('alarm', createAlarmModel(2).next(Date.now() - 500))
    expect(await publishAcked(onB, fresh.topic, fresh.frame)).toBe(true)
    await onB.endAsync()
    expect(((await stats(b)).rejected['ING_ERR_REPLAY'] ?? 0) - before).toBe(1)

    const port = redis.port
    await redis.stop()
    await until(async () => (await stats(b)).cluster?.redis === false)
    const refusedBefore = (await stats(b)).rejected['ING_ERR_CLUSTER'] ?? 0
    await expect(connectMutual(b, 'cal-m', issued)).rejects.toMatchObject({ code: 3 })
    expect(((await stats(b)).rejected['ING_ERR_CLUSTER'] ?? 0) - refusedBefore).toBe(1)
    redis = await startRedis(port)
    await until(async () => (await stats(b)).cluster?.redis === true)
  }, 90_000)
})
