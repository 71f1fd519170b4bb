/**
 * Several vitalflow nodes as child processes joined over one redis-server, each
 * with its own embedded chDB data directory (no ClickHouse server runs here),
 * and devices that connect to a node of the test's choosing over TLS with that
 * node's CA, as HAProxy would send them.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import mqtt, { type MqttClient } from 'mqtt'
import { createAdminClient, type AdminClient } from '../../src/api/index.ts'
import { DeviceSealer } from '../../devices/index.ts'
import type { Enrollment } from '../../src/registry/index.ts'
import { startChildNode } from './child-node.ts'
import { tempDir } from './node.ts'
export { until } from './node.ts'

export const CLUSTER_TOKEN = 'cluster-test-admin-token-0123456789'
const MASTER = randomBytes(32).toString('base64url')

export interface ClusterNode { name: string; proc: ChildProcess; mqtt: number; mqtts: number; mqttsMutual: number; http: number; api: AdminClient; ca: string; dir: ReturnType<typeof tempDir> }
export interface Stats {
  accepted: Record<string, number>; rejected: Record<string, number>; rowsFiltered: number; rowsStored: Record<string, number>
  cluster: { redis: boolean; feedCurrent: boolean; marksWaiting: number } | null
}

export async function startClusterNode (redisUrl: string, name: string, dir = tempDir(`vf-cluster-${name}-`), env: Record<string, string> = {}): Promise<ClusterNode> {
  const c = await startChildNode(dir.path, CLUSTER_TOKEN, {
    VF_REDIS_URL: redisUrl, VF_NODE_ID: name, VF_MASTER_KEY: MASTER, VF_CLUSTER_LIVE_TTL_MS: '1000', VF_CLUSTER_BARRIER_MS: '5000', VF_LOG_LEVEL: 'info', ...env,
  })
  const api = createAdminClient(`http://127.0.0.1:${c.http}`, CLUSTER_TOKEN)
  const { caPem } = await api.request<{ caPem: string }>('GET', '/admin/connection')
  return { name, proc: c.proc, mqtt: c.mqtt, mqtts: c.mqtts, mqttsMutual: c.mqttsMutual, http: c.http, api, ca: caPem, dir }
}

export async function connectTo (n: ClusterNode, e: Enrollment, opts: { clientId?: string; clean?: boolean } = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync({
    protocol: 'mqtts', host: '127.0.0.1', port: n.mqtts, ca: n.ca, servername: 'localhost', clientId: opts.clientId ?? e.device, username: e.device, password: e.secret,
    clean: opts.clean ?? true, reconnectPeriod: 0, connectTimeout: 10_000,
  })
  c.on('error', () => {})
  return c
}

export const statsOf = async (n: ClusterNode): Promise<Stats> => await n.api.request<Stats>('GET', '/admin/stats')
export const sealerOf = (e: Enrollment, next = 1): DeviceSealer => new DeviceSealer({ tenant: e.tenant, device: e.device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') }, next)

/** A stopped node's alarm rows, `{ "<device>/<seq>": count }`, read by a process of its own (read-alarm-rows.ts). */
export async function storedAlarms (dataDir: string): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/read-alarm-rows.ts', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (b: Buffer) => { out += b.toString('utf8') })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`read-alarm-rows exited ${code}`)
  return JSON.parse(out) as Record<string, number>
}

/** SIGTERM, and the exit (the node ships its log first). */
export async function stopNode (n: ClusterNode): Promise<void> {
  if (n.proc.exitCode !== null || n.proc.signalCode !== null) return
  const exited = once(n.proc, 'exit')
  n.proc.kill('SIGTERM')
  await exited
}
