/**
 * Test harness: a real ingest node (aedes on port 0, TLS, chDB in a temp dir)
 * and real mqtt.js device clients over TLS. Nothing here is mocked.
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClickHouseClient } from '@clickhouse/client'
import mqtt, { type MqttClient } from 'mqtt'
import { loadConfig, type Config } from '../../src/config/index.ts'
import { startNode, type IngestNode } from '../../src/pipeline/index.ts'
import { DeviceSealer } from '../../devices/envelope.ts'
import { WINDOW_SIZE } from '../../src/crypto/index.ts'
import { ReplayWindowFile } from '../../src/storage/index.ts'
import type { Enrollment, Family } from '../../src/registry/index.ts'

export function tempDir (prefix = 'vf-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => { rmSync(path, { recursive: true, force: true }) } }
}

export function testConfig (dataDir: string, overrides: Partial<Config> = {}): Config {
  return loadConfig({}, {
    DATA_DIR: dataDir, LOG_LEVEL: 'silent', MQTT_PORT: 0, MQTTS_PORT: 0, MQTTS_MTLS_PORT: 0, MQTTS_HOST: '127.0.0.1', HTTP_PORT: 0,
    BATCH_MAX_AGE_MS: 20, DEVICE_AUTH_COST: 10, ...overrides,
  })
}

export async function startTestNode (dataDir: string, overrides: Partial<Config> = {}): Promise<IngestNode> {
  return await startNode(testConfig(dataDir, overrides))
}

export interface TestDevice {
  enrollment: Enrollment
  sealer: DeviceSealer
  client: MqttClient
}

export async function connectTls (node: IngestNode, username: string, password: string, clientId = username): Promise<MqttClient> {
  return await mqtt.connectAsync({
    protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost',
    clientId, username, password, clean: true, reconnectPeriod: 0, connectTimeout: 5000,
  })
}

export async function enrollAndConnect (node: IngestNode, tenant: string, device: string, family: Family, patient: string | null): Promise<TestDevice> {
  const enrollment = await node.registry.enrollDevice({ tenant, device, family, patient })
  const sealer = new DeviceSealer({ tenant, device, keyId: enrollment.keyId, key: Buffer.from(enrollment.key, 'base64url') })
  const client = await connectTls(node, device, enrollment.secret)
  return { enrollment, sealer, client }
}

/** Reads after shipping: a PUBACK means "in the write-ahead log"; rows reach ClickHouse on the next flush. */
export async function rowsOf<T = Record<string, unknown>> (node: IngestNode, sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
  await node.storage.flush()
  const rs = await node.storage.conn.client.query({ query: sql.replaceAll('{db}', node.storage.conn.database), query_params: params, format: 'JSONEachRow' })
  return await rs.json<T>()
}

/**
 * The sequence numbers of `device` that the node's replay-window file (embedded storage) counts as
 * seen, oldest first: what a restart refuses as replays. After a flush, so that what is logged is in it.
 */
export async function windowSeen (node: IngestNode, dataDir: string, device: string): Promise<bigint[]> {
  await node.storage.flush()
  const file = await ReplayWindowFile.load(join(dataDir, 'replay-windows'), (why) => { throw new Error(`replay-window file damaged: ${why}`) })
  const w = file?.snapshot().get(device)
  if (w === undefined) return []
  const seen: bigint[] = []
  for (let s = w.high >= BigInt(WINDOW_SIZE) ? w.high - BigInt(WINDOW_SIZE) + 1n : 0n; s <= w.high; s++) if (!w.check(s)) seen.push(s)
  return seen
}

export async function count (node: IngestNode, table: string, where = '1', params: Record<string, unknown> = {}): Promise<number> {
  const r = await rowsOf<{ n: string }>(node, `SELECT count() AS n FROM {db}.${table} WHERE ${where}`, params)
  return Number(r[0]?.n ?? 0)
}

const closedOf = new WeakMap<MqttClient, Promise<false>>()
/**
 * Publishes at QoS 1; resolves true on the PUBACK, false if the connection
 * closes first. One close listener per client, however many publishes wait.
 */
/** Publishes at QoS 1 and records how it ended: 'acked' on the PUBACK, 'closed' if the connection went first. */
export function publishTracked (c: MqttClient, m: { topic: string; frame: Uint8Array }): { state: () => 'pending' | 'acked' | 'closed'; settled: Promise<'acked' | 'closed'> } {
  let state: 'pending' | 'acked' | 'closed' = 'pending'
  const closed = new Promise<'closed'>((resolve) => { c.once('close', () => { resolve('closed') }) })
  const settled = Promise.race([c.publishAsync(m.topic, Buffer.from(m.frame), { qos: 1 }).then(() => 'acked' as const, () => 'closed' as const), closed])
    .then((s) => { state = s; return s })
  return { state: () => state, settled }
}

export async function publishAcked (c: MqttClient, topic: string, frame: Uint8Array): Promise<boolean> {
  if (!c.connected) return false
  let closed = closedOf.get(c)
  if (closed === undefined) {
    closed = new Promise<false>((resolve) => { c.once('close', () => { resolve(false) }) })
    closedOf.set(c, closed)
  }
  return await Promise.race([c.publishAsync(topic, Buffer.from(frame), { qos: 1 }).then(() => true, () => false), closed])
}

/** Polls a condition (a state to reach, never a time to assert). */
export async function until (what: () => boolean | Promise<boolean>): Promise<void> {
  while (!await what()) await new Promise((resolve) => setTimeout(resolve, 25))
}

/**
 * Keeps a chDB connection busy with a statement of its own: a read of url() from a local HTTP server
 * that answers only once released (embedded chDB runs one statement at a time per connection). `busy` is
 * the statement's rows, `done()` whether it has ended. It is released by `release()`, or after 30 s, so a
 * test whose work queues behind it fails its assertions instead of hanging.
 */
export async function holdConnection (client: ClickHouseClient): Promise<{ busy: Promise<unknown>; done: () => boolean; release: () => void }> {
  let open!: () => void
  const gate = new Promise<void>((resolve) => { open = resolve })
  const server = createServer((_req, res) => { void gate.then(() => { res.end('1\n') }) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const fallback = setTimeout(() => { open() }, 30_000)
  let ended = false
  const busy = client.query({ query: `SELECT * FROM url('http://127.0.0.1:${port}/', CSV, 'n UInt8')`, format: 'JSONEachRow' })
    .then(async (r) => await r.json()).finally(() => { ended = true; clearTimeout(fallback); server.close() })
  return { busy, done: () => ended, release: () => { open() } }
}
