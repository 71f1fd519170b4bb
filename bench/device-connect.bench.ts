/**
 * Fleet reconnect after a restart: password devices connecting over TLS at
 * once (bounded concurrency, like a fleet's jittered back-off), each then
 * publishing one alarm at QoS 1. Side by side in the same run, on the same
 * node: devices whose secret is stored as a keyed hash (today) and devices whose
 * secret is stored as scrypt at the production cost 14 (what every device had
 * before, paying one scrypt per CONNECT; here each pays it once and is then
 * migrated). Also the in-process enrolment rate with and without that scrypt.
 * Usage: npx tsx bench/device-connect.bench.ts [keyedDevices=2000] [scryptDevices=200] [concurrency=200]
 */
import mqtt, { type MqttClient } from 'mqtt'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { hashSecret, type Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const keyedCount = Number(process.argv[2] ?? 2000)
const scryptCount = Number(process.argv[3] ?? 200)
const concurrency = Number(process.argv[4] ?? 200)
const dir = tempDir('vf-bench-')
const config = testConfig(dir.path, { DEVICE_AUTH_COST: 14, PUBLISH_RATE: 1000, PUBLISH_BURST: 10_000, MAX_CONNECTIONS_PER_TENANT: 1_000_000 })
let node: IngestNode = await startNode(config)
await node.registry.createTenant('bench', 'bench')

async function enrol (prefix: string, n: number, scrypt: boolean): Promise<{ devices: Enrollment[]; perSec: number }> {
  const devices: Enrollment[] = []
  const rows: Record<string, unknown>[] = []
  const t = performance.now()
  for (let i = 0; i < n; i++) {
    const e = await node.registry.enrollDevice({ tenant: 'bench', device: `${prefix}${i}`, family: 'calarm', patient: null })
    if (scrypt) {
      // what enrolment did before: the secret hashed with scrypt at the production cost
      const hash = await hashSecret(node.hasher, e.secret, config.DEVICE_AUTH_COST)
      rows.push({ tenant_id: 'bench', device_id: e.device, family: 'calarm', patient_id: '', secret_hash: hash, gateway_id: '', updated_at: Date.now() + 1 })
    }
    devices.push(e)
  }
  const perSec = n / ((performance.now() - t) / 1000)
  if (rows.length > 0) await node.storage.conn.client.insert({ table: node.storage.conn.table('devices'), values: rows, format: 'JSONEachRow' })
  return { devices, perSec: Math.round(perSec * 10) / 10 }
}

const keyed = await enrol('cal-k', keyedCount, false)
const scrypt = await enrol('cal-s', scryptCount, true)
// the restart: the registry reads the hashes back from the store, every device reconnects
await node.close()
node = await startNode(config)
const model = createAlarmModel(9)

interface Reconnect { devices: number; backAndAcked: number; failed: number; seconds: number; connectsPerSec: number }

async function reconnect (devices: Enrollment[]): Promise<Reconnect> {
  const clients: MqttClient[] = []
  let failed = 0
  let acked = 0
  let next = 0
  const t = performance.now()
  const worker = async (): Promise<void> => {
    while (next < devices.length) {
      const e = devices[next++]!
      try {
        const c = await mqtt.connectAsync({
          protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost',
          clientId: e.device, username: e.device, password: e.secret, reconnectPeriod: 0, connectTimeout: 30_000,
        })
        clients.push(c)
        const sealer = new DeviceSealer({ tenant: 'bench', device: e.device, keyId: 1, key: Buffer.from(e.key, 'base64url') })
        const { topic, frame } = sealer.seal('alarm', model.next(Date.now() - 100))
        await c.publishAsync(topic, Buffer.from(frame), { qos: 1 })
        acked++
      } catch { failed++ }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, devices.length) }, worker))
  const seconds = (performance.now() - t) / 1000
  await Promise.all(clients.map(async (c) => { await c.endAsync(true) }))
  return { devices: devices.length, backAndAcked: acked, failed, seconds: Math.round(seconds * 100) / 100, connectsPerSec: Math.round(acked / seconds) }
}

const scryptReconnect = await reconnect(scrypt.devices)
const keyedReconnect = await reconnect(keyed.devices)
await node.storage.flush()
const stored = await (await node.storage.conn.client.query({ query: `SELECT count() AS n FROM ${node.storage.conn.table('alarm_events')}`, format: 'JSONEachRow' })).json<{ n: string }>()
await node.close()
dir.remove()

process.stdout.write(`${JSON.stringify({
  bench: 'device-connect',
  machine: machine(),
  concurrency,
  enrolment: { keyedPerSec: keyed.perSec, scryptPerSec: scrypt.perSec },
  reconnectAfterRestart: { keyed: keyedReconnect, scryptCost14: scryptReconnect },
  speedup: Math.round((keyedReconnect.connectsPerSec / scryptReconnect.connectsPerSec) * 10) / 10,
  alarmsStored: Number(stored[0]?.n ?? 0),
  expectedStored: keyedReconnect.backAndAcked + scryptReconnect.backAndAcked,
}, null, 2)}\n`)
