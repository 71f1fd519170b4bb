/**
 * Revoking a device (lost bracelet, stolen phone) over real sockets: it is
 * disconnected on whichever listener it is on (TLS, mutual TLS, plain MQTT),
 * refused at its next CONNECT with its secret or its certificate (and backed
 * off when it loops), nothing it sends after the revocation is stored, a
 * revoked gateway carries no bracelet's data, and a revoked bracelet's data is
 * refused through a gateway that is not. Revocations are read back after a
 * restart.
 */
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient, type FleetPage } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, createBraceletModel, DeviceSealer } from '../devices/index.ts'
import { connack, connectPacket, rawSocket } from './support/raw-mqtt.ts'
import { connectTls, count, publishAcked, rowsOf, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const alarms = createAlarmModel(8)
const bracelets = createBraceletModel(8)
const MIN = 60_000
const e: Record<string, Enrollment> = {}
let revokedCert: { certPem: string; keyPem?: string | undefined }

const sealerOf = (d: Enrollment): DeviceSealer => new DeviceSealer({ tenant: d.tenant, device: d.device, keyId: 1, key: Buffer.from(d.key, 'base64url') })
const closedOf = (c: MqttClient): Promise<void> => new Promise<void>((resolve) => { c.once('close', () => { resolve() }) })
const login = async (device: string, password: string, from = '127.0.0.1'): Promise<number | 'closed'> => {
  const s = await rawSocket(node.mqtt!.port, from)
  const code = await connack(s, connectPacket({ clientId: device, username: device, password }))
  s.destroy()
  return code
}

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path, { AUTH_FREE_FAILURES: 3, AUTH_MAX_BACKOFF_S: 60 })
  await node.registry.createTenant('care-rv', 'RV')
  await node.registry.createPatient('care-rv', 'p-rv1')
  for (const [device, family, gateway] of [
    ['cal-tls', 'calarm', null], ['cal-mtls', 'calarm', null], ['cal-tcp', 'calarm', null], ['cal-flight', 'calarm', null],
    ['gw-rv1', 'gateway', null], ['gw-rv2', 'gateway', null], ['brc-via1', 'bracelet', 'gw-rv1'], ['brc-via2', 'bracelet', 'gw-rv2'], ['brc-via2b', 'bracelet', 'gw-rv2'],
  ] as const) {
    e[device] = await node.registry.enrollDevice({ tenant: 'care-rv', device, family, patient: family === 'bracelet' ? 'p-rv1' : null, gateway })
  }
  await node.registry.recordConsent({ tenant: 'care-rv', patient: 'p-rv1', purpose: 'care', category: 'vitals', action: 'grant', recordedBy: 'test', source: 'professional' })
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('device revocation', () => {
  it('disconnects the device on every listener at once and refuses it at its next CONNECT, by secret and by certificate', async () => {
    const issued = await node.registry.issueCertificate('care-rv', 'cal-mtls')
    revokedCert = issued
    const mutualOpts = {
      protocol: 'mqtts' as const, host: '127.0.0.1', port: node.mqttsMutual!.port, ca: node.caPem!, servername: 'localhost',
      key: issued.keyPem!, cert: issued.certPem, clientId: 'cal-mtls', reconnectPeriod: 0, connectTimeout: 5000,
    }
    const tls = await connectTls(node, 'cal-tls', e['cal-tls']!.secret)
    const mutual = await mqtt.connectAsync(mutualOpts)
    const tcp = await mqtt.connectAsync({ host: '127.0.0.1', port: node.mqtt!.port, clientId: 'cal-tcp', username: 'cal-tcp', password: e['cal-tcp']!.secret, reconnectPeriod: 0 })
    const closed = [closedOf(tls), closedOf(mutual), closedOf(tcp)]
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    for (const d of ['cal-tls', 'cal-mtls', 'cal-tcp']) expect(await api.request('POST', `/admin/tenants/care-rv/devices/${d}/revoke`)).toMatchObject({ device: d })
    await Promise.all(closed)

    // refused as a wrong secret is (CONNACK 4): the answer says nothing of why
    expect(await login('cal-tls', e['cal-tls']!.secret)).toBe(4)
    expect(await login('cal-tcp', e['cal-tcp']!.secret)).toBe(4)
    // the certificate is on the tenant CA's revocation list now: refused at the TLS handshake, before any MQTT
    // (a refusal by the registry would answer a CONNACK; here the connection closes without one)
    const t = tlsConnect({ host: '127.0.0.1', port: node.mqttsMutual!.port, ca: node.caPem!, servername: 'localhost', key: issued.keyPem!, cert: issued.certPem })
    t.on('error', () => {})
    await once(t, 'secureConnect')
    expect(await connack(t as unknown as Socket, connectPacket({ clientId: 'cal-mtls' }))).toBe('closed')
    // an unrevoked device is served as before
    const other = await connectTls(node, 'cal-flight', e['cal-flight']!.secret)
    await other.endAsync()
    // the fleet view says so, and revoking again changes nothing
    const page = await api.request<FleetPage>('GET', '/admin/tenants/care-rv/devices?family=calarm')
    const revoked = page.devices.filter((d) => d.revokedAt !== null).map((d) => d.device)
    expect(revoked).toEqual(['cal-mtls', 'cal-tcp', 'cal-tls'])
    const first = page.devices.find((d) => d.device === 'cal-tls')!.revokedAt
    expect(await api.request('POST', '/admin/tenants/care-rv/devices/cal-tls/revoke')).toEqual({ device: 'cal-tls', revokedAtMs: first })
  }, 60_000)

  it('backs off a revoked device that keeps reconnecting, and counts each refusal', async () => {
    const from = '127.0.0.21'
    const codes: Array<number | 'closed'> = []
    for (let i = 0; i < 6; i++) codes.push(await login('cal-tls', e['cal-tls']!.secret, from))
    // its free failures and the one that starts the back-off, then refused without a check (CONNACK 5)
    expect(codes).toEqual([4, 4, 4, 4, 5, 5])
    expect(await count(node, 'rejected_messages', "remote_address = {a:String} AND reason = 'ING_ERR_AUTH'", { a: from })).toBe(4)
    expect(await count(node, 'rejected_messages', "remote_address = {a:String} AND reason = 'ING_ERR_AUTH_BACKOFF'", { a: from })).toBe(2)
  })

  it('stores nothing a device sent after its revocation, also what was already in flight', async () => {
    const d = e['cal-flight']!
    const c = await connectTls(node, d.device, d.secret)
    const sealer = sealerOf(d)
    const closed = closedOf(c)
    let acked = 0
    // publish without waiting, revoke after a few PUBACKs: the rest is in flight or sent after
    const sending = (async () => {
      for (let i = 0; i < 200 && c.connected; i++) {
        const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
        c.publish(topic, Buffer.from(frame), { qos: 1 }, (err) => { if (err === undefined || err === null) acked++ })
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()
    while (acked < 5) await new Promise((resolve) => setTimeout(resolve, 2))
    const { revokedAtMs } = await node.registry.revokeDevice('care-rv', d.device)
    await closed
    await sending
    const rows = await rowsOf<{ t: string }>(node, 'SELECT toString(toUnixTimestamp64Milli(ingested_at)) AS t FROM {db}.alarm_events WHERE device_id = {d:String}', { d: d.device })
    expect(rows.length).toBeGreaterThanOrEqual(5)
    expect(rows.length).toBeLessThan(200)
    expect(rows.filter((r) => Number(r.t) > revokedAtMs)).toEqual([])
  }, 60_000)

  it('a revoked gateway carries no bracelet\'s data; a revoked bracelet\'s data is refused through a gateway that is not', async () => {
    const vitals = async (device: string): Promise<number> => await count(node, 'vital_samples', 'device_id = {d:String}', { d: device })
    // gateway 1 is revoked: it is refused, and so is all it would carry
    await node.registry.revokeDevice('care-rv', 'gw-rv1')
    expect(await login('gw-rv1', e['gw-rv1']!.secret)).toBe(4)
    // gateway 2 stays: its revoked bracelet is refused, its other bracelet is stored, the gateway stays connected
    await node.registry.revokeDevice('care-rv', 'brc-via2')
    const g = await connectTls(node, 'gw-rv2', e['gw-rv2']!.secret)
    const refused = sealerOf(e['brc-via2']!).seal('vitals', bracelets.nextBatch(Date.now() - 5 * MIN))
    expect(await publishAcked(g, refused.topic, refused.frame)).toBe(true)
    const taken = sealerOf(e['brc-via2b']!).seal('vitals', bracelets.nextBatch(Date.now() - 5 * MIN))
    expect(await publishAcked(g, taken.topic, taken.frame)).toBe(true)
    expect(g.connected).toBe(true)
    await g.endAsync()
    expect(await vitals('brc-via2')).toBe(0)
    expect(await vitals('brc-via2b')).toBeGreaterThan(0)
    // recorded under the gateway that carried it
    expect(await count(node, 'rejected_messages', "device_id = 'gw-rv2' AND reason = 'ING_ERR_REVOKED'")).toBe(1)
  }, 60_000)

  it('keeps the last good revocation list when a new one does not parse, and says so', async () => {
    const file = join(dir.path, 'tenant-ca', 'care-rv', 'crl.pem')
    const good = readFileSync(file, 'utf8')
    const events = node.metrics.securityEvents
    writeFileSync(file, '-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n')
    node.reloadTls() // SIGHUP
    expect(node.metrics.securityEvents).toBe(events + 1)
    // still in force: the revoked certificate is refused at the handshake, a good one is served
    const t = tlsConnect({ host: '127.0.0.1', port: node.mqttsMutual!.port, ca: node.caPem!, servername: 'localhost', key: revokedCert.keyPem!, cert: revokedCert.certPem })
    t.on('error', () => {})
    await once(t, 'secureConnect')
    expect(await connack(t as unknown as Socket, connectPacket({ clientId: 'cal-mtls' }))).toBe('closed')
    const fresh = await node.registry.enrollDevice({ tenant: 'care-rv', device: 'cal-fresh', family: 'calarm', patient: null })
    const cert = await node.registry.issueCertificate('care-rv', fresh.device)
    const c = await mqtt.connectAsync({
      protocol: 'mqtts', host: '127.0.0.1', port: node.mqttsMutual!.port, ca: node.caPem!, servername: 'localhost',
      key: cert.keyPem!, cert: cert.certPem, clientId: fresh.device, reconnectPeriod: 0, connectTimeout: 5000,
    })
    await c.endAsync()
    writeFileSync(file, good)
  }, 60_000)

  it('keeps every revocation across a restart (read back from the store)', async () => {
    await node.close()
    node = await startTestNode(dir.path, { AUTH_FREE_FAILURES: 3, AUTH_MAX_BACKOFF_S: 60 })
    const rows = await rowsOf<{ device_id: string }>(node, "SELECT device_id FROM {db}.devices FINAL WHERE tenant_id = 'care-rv' AND revoked_at IS NOT NULL ORDER BY device_id")
    expect(rows.map((r) => r.device_id)).toEqual(['brc-via2', 'cal-flight', 'cal-mtls', 'cal-tcp', 'cal-tls', 'gw-rv1'])
    expect(await login('cal-tcp', e['cal-tcp']!.secret, '127.0.0.31')).toBe(4)
    expect(await login('brc-via2b', e['brc-via2b']!.secret, '127.0.0.31')).toBe(0)
  }, 60_000)
})
