/**
 * The fleet view over a real node: devices report status over MQTT, one gets a
 * client certificate and logs in with it, one stays silent; the view filters
 * (not seen, low battery, certificate expiring), pages in id order without
 * gaps or repeats, never shows another tenant's device, and keeps what it knew
 * across a restart (device_presence, read back).
 */
import fc from 'fast-check'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient, type FleetDevice, type FleetPage } from '../src/api/index.ts'
import type { DeviceStatus } from '../src/decode/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { DeviceSealer } from '../devices/index.ts'
import { connectTls, publishAcked, rowsOf, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const devices: Record<string, Enrollment> = {}

const status = (battery: number, t = Date.now() - 1000): DeviceStatus => ({
  reportedAtMs: t, model: 'cAlarm 3', firmware: `2.${battery}`, serialNumber: 'CA3', batteryPercent: battery, lastSyncMs: t, diagnostics: [],
})

async function report (e: Enrollment, s: DeviceStatus): Promise<void> {
  const c = await connectTls(node, e.device, e.secret)
  const sealer = new DeviceSealer({ tenant: e.tenant, device: e.device, keyId: 1, key: Buffer.from(e.key, 'base64url') })
  const { topic, frame } = sealer.seal('status', s)
  expect(await publishAcked(c, topic, frame)).toBe(true)
  await c.endAsync()
}

const api = (): ReturnType<typeof createAdminClient> => createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
const page = async (tenant: string, query = ''): Promise<FleetPage> => await api().request<FleetPage>('GET', `/admin/tenants/${tenant}/devices${query}`)
const ids = (p: FleetPage): string[] => p.devices.map((d) => d.device)

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
  await node.registry.createTenant('care-fa', 'FA')
  await node.registry.createTenant('care-fb', 'FB')
  await node.registry.createPatient('care-fa', 'p-fa1')
  for (const [device, patient] of [['cal-low', 'p-fa1'], ['cal-full', null], ['cal-cert', null], ['brc-silent', null]] as const) {
    devices[device] = await node.registry.enrollDevice({ tenant: 'care-fa', device, family: device.startsWith('brc') ? 'bracelet' : 'calarm', patient })
  }
  // the other tenant: ids that sort between and around ours
  const other = ['brc-a', 'cal-m', 'zzz'].map((d) => ({ line: 0, device: `${d}-fb`, family: 'calarm' as const, patient: null, gateway: null }))
  await node.registry.importDevices('care-fb', other)
  await report(devices['cal-low']!, status(15))
  await report(devices['cal-full']!, status(80))
  // an older report synced late does not overwrite the newer one
  await report(devices['cal-full']!, status(5, Date.now() - 3_600_000))
  const issued = await node.registry.issueCertificate('care-fa', 'cal-cert')
  const c = await mqtt.connectAsync({
    protocol: 'mqtts', host: '127.0.0.1', port: node.mqttsMutual!.port, ca: node.caPem!, servername: 'localhost',
    key: issued.keyPem!, cert: issued.certPem, clientId: 'cal-cert', reconnectPeriod: 0, connectTimeout: 5000,
  })
  await c.endAsync()
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('fleet view', () => {
  it('shows every device of the tenant with what it reported, and nothing of another tenant', async () => {
    const p = await page('care-fa')
    expect(ids(p)).toEqual(['brc-silent', 'cal-cert', 'cal-full', 'cal-low'])
    expect(p.total).toBe(4)
    const by = new Map(p.devices.map((d) => [d.device, d] as [string, FleetDevice]))
    expect(by.get('cal-low')).toMatchObject({ battery: 15, firmware: '2.15', patient: 'p-fa1', bound: true, keyId: 1 })
    expect(by.get('cal-full')).toMatchObject({ battery: 80, firmware: '2.80' })
    expect(by.get('brc-silent')).toMatchObject({ lastSeenAt: null, battery: null, certificateNotAfter: null })
    expect(by.get('cal-cert')!.certificateNotAfter).toBeGreaterThan(Date.now())
    expect(typeof by.get('cal-low')!.lastSeenAt).toBe('number')
  })

  it('filters: battery below, not seen for hours (never seen counts), certificate expiring, family', async () => {
    expect(ids(await page('care-fa', '?batteryBelow=20'))).toEqual(['cal-low'])
    expect(ids(await page('care-fa', '?notSeenHours=1'))).toEqual(['brc-silent', 'cal-cert'])
    const notAfter = (await page('care-fa')).devices.find((d) => d.device === 'cal-cert')!.certificateNotAfter!
    const days = Math.ceil((notAfter - Date.now()) / 86_400_000)
    expect(ids(await page('care-fa', `?certExpiringDays=${days}`))).toEqual(['cal-cert'])
    expect(ids(await page('care-fa', `?certExpiringDays=${days - 2}`))).toEqual([])
    expect(ids(await page('care-fa', '?family=bracelet'))).toEqual(['brc-silent'])
  })

  it('pages through the tenant in id order: every device exactly once, whatever the page size', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.constantFrom('care-fa', 'care-fb'), async (limit, tenant) => {
      const seen: string[] = []
      let after: string | null = null
      for (let i = 0; i < 20; i++) {
        const p: FleetPage = await page(tenant, `?limit=${limit}${after === null ? '' : `&after=${after}`}`)
        seen.push(...ids(p))
        after = p.next
        if (after === null) break
      }
      const own = node.registry.listDevices(tenant).map((d) => d.device as string).sort()
      expect(seen).toEqual(own)
    }), { numRuns: 15 })
  })

  it('answers a clinician without patient ids, and a bad filter with 400', async () => {
    await node.registry.createTenant('care-fa', 'FA')
    await createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken).request('POST', '/admin/users', { tenant: 'care-fa', user: 'nurse', role: 'clinician', password: 'a long enough password' })
    const login = await fetch(`http://127.0.0.1:${node.http.port}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: 'care-fa', user: 'nurse', password: 'a long enough password' }) })
    const { token } = await login.json() as { token: string }
    const r = await fetch(`http://127.0.0.1:${node.http.port}/api/devices?batteryBelow=20`, { headers: { authorization: `Bearer ${token}` } })
    const body = await r.json() as FleetPage
    expect(body.devices.map((d) => [d.device, d.bound, 'patient' in d])).toEqual([['cal-low', true, false]])
    expect((await fetch(`http://127.0.0.1:${node.http.port}/api/devices?batteryBelow=lots`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(400)
  })

  it('keeps last seen, battery and certificate expiry across a restart (read back from device_presence)', async () => {
    const before = (await page('care-fa')).devices
    await node.close()
    node = await startTestNode(dir.path)
    expect((await page('care-fa')).devices).toEqual(before)
    const stored = await rowsOf<{ device_id: string; battery: number | null }>(node, "SELECT device_id, battery FROM {db}.device_presence FINAL WHERE tenant_id = 'care-fa' ORDER BY device_id")
    expect(stored).toEqual([{ device_id: 'cal-cert', battery: null }, { device_id: 'cal-full', battery: 80 }, { device_id: 'cal-low', battery: 15 }])
  }, 60_000)
})
