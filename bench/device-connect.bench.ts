/**
 * Fleet reconnect after a restart: password devices connecting over TLS at
 * once (bounded concurrency, like a fleet's jittered back-off), each then
 * publishing one alarm at QoS 1. Side by side in the same run, on the same
 * node: devices whose secret is stored as a keyed hash (today), the same with
 * the TLS session ticket they got before the restart (resumption), and devices
 * whose secret is stored as scrypt at the production cost 14 (what every device
 * had before, paying one scrypt per CONNECT; here each pays it once and is then
 * migrated). Also the in-process enrolment rate with and without that scrypt.
 * The device side runs in this process too, on the same 2 cores.
 * With certDevices > 0, as many devices log in with client certificates on the mutual-TLS listener.
 * Usage: npx tsx bench/device-connect.bench.ts [keyedDevices=2000] [scryptDevices=200] [concurrency=200] [certDevices=0] [tickets]
 */
import type { TLSSocket } from 'node:tls'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { hashSecret, type Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const keyedCount = Number(process.argv[2] ?? 2000)
const scryptCount = Number(process.argv[3] ?? 200)
const concurrency = Number(process.argv[4] ?? 200)
const certCount = Number(process.argv[5] ?? 0)
/** `tickets`: the certificate devices also connect before the restart and resume with the ticket they got. */
const certTickets = process.argv[6] === 'tickets'
const dir = tempDir('vf-bench-')
const config = testConfig(dir.path, { DEVICE_AUTH_COST: 14, PUBLISH_RATE: 1000, PUBLISH_BURST: 10_000, MAX_CONNECTIONS_PER_TENANT: 1_000_000 })
let node: IngestNode = await startNode(config)
await node.registry.createTenant('bench', 'bench')

/** Keyed devices through one bulk import; scrypt devices as before: each enrolled, then its secret hashed with scrypt at cost 14. */
async function enrol (prefix: string, n: number, scrypt: boolean): Promise<{ devices: Enrollment[]; perSec: number }> {
  const t = performance.now()
  if (!scrypt) {
    const r = await node.registry.importDevices('bench', Array.from({ length: n }, (_, i) => ({ line: i + 1, device: `${prefix}${i}`, family: 'calarm' as const, patient: null, gateway: null })))
    return { devices: r.enrolled, perSec: Math.round(n / ((performance.now() - t) / 1000)) }
  }
  const devices: Enrollment[] = []
  const rows: Array<Record<string, unknown>> = []
  for (let i = 0; i < n; i++) {
    const e = await node.registry.enrollDevice({ tenant: 'bench', device: `${prefix}${i}`, family: 'calarm', patient: null })
    // what enrolment did before: the secret hashed with scrypt at the production cost
    const hash = await hashSecret(node.hasher, e.secret, config.DEVICE_AUTH_COST)
    rows.push({ tenant_id: 'bench', device_id: e.device, family: 'calarm', patient_id: '', secret_hash: hash, gateway_id: '', updated_at: Date.now() + 1 })
    devices.push(e)
  }
  const perSec = n / ((performance.now() - t) / 1000)
  await node.storage.conn.client.insert({ table: node.storage.conn.table('devices'), values: rows, format: 'JSONEachRow' })
  return { devices, perSec: Math.round(perSec * 10) / 10 }
}

const keyed = await enrol('cal-k', keyedCount, false)
const ticketed = await enrol('cal-t', keyedCount, false)
const certified = await enrol('cal-c', certCount, false)
// their client certificates (a key made here, as a provisioning station would), a few openssl runs at a time
const certs = new Map<string, { certPem: string; keyPem?: string | undefined }>()
{
  let i = 0
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (i < certified.devices.length) { const e = certified.devices[i++]!; certs.set(e.device, await node.registry.issueCertificate('bench', e.device)) }
  }))
}
const scrypt = await enrol('cal-s', scryptCount, true)
const model = createAlarmModel(9)

const nextSeq = new Map<string, number>()
const errors = new Map<string, number>()

interface Reconnect { devices: number; backAndAcked: number; failed: number; seconds: number; connectsPerSec: number; resumed: number }

// before the restart: the ticketed devices connect once and keep the session ticket the node gives them
const tickets = new Map<string, Buffer>()
await reconnect(ticketed.devices, tickets)
const certSessions = new Map<string, Buffer>()
if (certTickets) await reconnect(certified.devices, certSessions)
// the restart: the registry reads the hashes back from the store, every device reconnects
await node.close()
node = await startNode(config)

async function reconnect (devices: Enrollment[], sessions?: Map<string, Buffer>): Promise<Reconnect> {
  const clients: MqttClient[] = []
  let failed = 0
  let acked = 0
  let resumed = 0
  let next = 0
  const t = performance.now()
  const worker = async (): Promise<void> => {
    while (next < devices.length) {
      const e = devices[next++]!
      try {
        const session = sessions?.get(e.device)
        const cert = certs.get(e.device)
        const c = await mqtt.connectAsync({
          protocol: 'mqtts', host: '127.0.0.1', servername: 'localhost', ca: node.caPem, clientId: e.device, reconnectPeriod: 0, connectTimeout: 30_000,
          ...(cert === undefined
            ? { port: node.mqtts.port, username: e.device, password: e.secret }
            : { port: node.mqttsMutual!.port, key: cert.keyPem, cert: cert.certPem }),
          ...(session === undefined ? {} : { session }),
        } as IClientOptions)
        clients.push(c)
        const tls = c.stream as TLSSocket
        if (tls.isSessionReused()) resumed++
        if (sessions !== undefined && session === undefined) {
          // TLS 1.3 sends the ticket after the handshake: keep the newest one seen on this connection
          const got = tls.getSession()
          if (got !== undefined) sessions.set(e.device, got)
          tls.on('session', (t: Buffer) => { sessions.set(e.device, t) })
        }
        // a device keeps counting its sequence numbers across connections (a repeat would be refused as a replay)
        const sealer = new DeviceSealer({ tenant: 'bench', device: e.device, keyId: 1, key: Buffer.from(e.key, 'base64url') }, (nextSeq.get(e.device) ?? 1))
        nextSeq.set(e.device, sealer.nextSeq + 1)
        const { topic, frame } = sealer.seal('alarm', model.next(Date.now() - 100))
        await c.publishAsync(topic, Buffer.from(frame), { qos: 1 })
        acked++
        // client and node share this process's 20,000 descriptors: 10,000 links held open on both sides
        // would run out of them, so each device leaves once acknowledged (the node's work is the same)
        await c.endAsync(true)
      } catch (err) {
        failed++
        const why = (err as Error).message.slice(0, 80)
        errors.set(why, (errors.get(why) ?? 0) + 1)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, devices.length) }, worker))
  const seconds = (performance.now() - t) / 1000
  await Promise.all(clients.map(async (c) => { await c.endAsync(true) }))
  return { devices: devices.length, backAndAcked: acked, failed, seconds: Math.round(seconds * 100) / 100, connectsPerSec: Math.round(acked / seconds), resumed }
}

const scryptReconnect = await reconnect(scrypt.devices)
const keyedReconnect = await reconnect(keyed.devices)
const ticketedReconnect = await reconnect(ticketed.devices, tickets)
const certReconnect = certCount === 0 ? null : await reconnect(certified.devices, certTickets ? certSessions : undefined)
await node.storage.flush()
const stored = await (await node.storage.conn.client.query({ query: `SELECT count() AS n, uniqExact(device_id, seq) AS u FROM ${node.storage.conn.table('alarm_events')}`, format: 'JSONEachRow' })).json<{ n: string; u: string }>()
await node.close()
dir.remove()

process.stdout.write(`${JSON.stringify({
  bench: 'device-connect',
  machine: machine(),
  concurrency,
  enrolment: { keyedBulkPerSec: keyed.perSec, scryptOneByOnePerSec: scrypt.perSec },
  reconnectAfterRestart: { keyed: keyedReconnect, keyedWithTicket: ticketedReconnect, scryptCost14: scryptReconnect, ...(certReconnect === null ? {} : { clientCertificate: certReconnect }) },
  speedupKeyed: Math.round((keyedReconnect.connectsPerSec / scryptReconnect.connectsPerSec) * 10) / 10,
  speedupTicket: Math.round((ticketedReconnect.connectsPerSec / keyedReconnect.connectsPerSec) * 100) / 100,
  errors: Object.fromEntries(errors),
  // every acknowledged alarm, before and after the restart, stored exactly once
  alarmsStored: Number(stored[0]?.n ?? 0),
  distinctStored: Number(stored[0]?.u ?? 0),
  expectedStored: keyedReconnect.backAndAcked + ticketedReconnect.backAndAcked * 2 + scryptReconnect.backAndAcked + (certReconnect?.backAndAcked ?? 0) * (certTickets ? 2 : 1),
}, null, 2)}\n`)
