/**
 * The clinician API over real HTTP, on real chDB: log-in, lock-out, session
 * expiry, roles, tenant isolation (property-based, over every endpoint), the
 * SQL it sends, downsampling, and the real-time alarm path over MQTT and SSE.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { Sessions, createAdminClient } from '../src/api/index.ts'
import { createAlarmModel, createBraceletModel, DeviceSealer } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { connectTls, rowsOf, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const PASSWORD = 'correct horse battery staple'
const HOUR = 3_600_000
const t0 = Date.now() - 6 * HOUR
const devices: Record<string, Enrollment> = {}
const base = () => `http://127.0.0.1:${node.http.port}`

async function call (method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  const r = await fetch(base() + path, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body),
  })
  const text = await r.text()
  let json: unknown = null
  try { json = JSON.parse(text) } catch { /* not JSON */ }
  return { status: r.status, json, text }
}
async function login (tenant: string, user: string, password = PASSWORD): Promise<string> {
  const r = await call('POST', '/api/login', undefined, { tenant, user, password })
  expect(r.status).toBe(200)
  return (r.json as { token: string }).token
}

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path, { LOGIN_MAX_FAILURES: 3, LOGIN_LOCK_MS: 60_000, RESEARCH_MIN_GROUP: 2 })
  const admin = createAdminClient(base(), node.adminToken)
  for (const t of ['care-a', 'care-b']) {
    await node.registry.createTenant(t, t)
    for (const p of ['1', '2', '3']) {
      const patient = `${t}-p${p}`
      await node.registry.createPatient(t, patient)
      for (const category of ['vitals', 'spot_measurements', 'location'] as const) {
        await node.registry.recordConsent({ tenant: t, patient, purpose: 'care', category, action: 'grant', recordedBy: 'x', source: 'app', validFromMs: 0 })
      }
      if (p !== '3') await node.registry.recordConsent({ tenant: t, patient, purpose: 'research', category: 'vitals', action: 'grant', recordedBy: 'x', source: 'app', validFromMs: 0 })
    }
    for (const [user, role] of [['doc', 'clinician'], ['res', 'researcher'], ['resp', 'responder'], ['boss', 'tenant_admin']] as const) {
      await admin.request('POST', '/admin/users', { tenant: t, user: `${t}-${user}`, role, password: PASSWORD })
    }
    for (const [d, family, patient] of [[`${t}-brc1`, 'bracelet', `${t}-p1`], [`${t}-brc2`, 'bracelet', `${t}-p2`], [`${t}-cal1`, 'calarm', `${t}-p1`], [`${t}-cvk1`, 'cvitals', `${t}-p1`]] as const) {
      devices[d] = await node.registry.enrollDevice({ tenant: t, device: d, family, patient })
    }
  }
  await admin.request('POST', '/admin/users', { tenant: '', user: 'root', role: 'platform_admin', password: PASSWORD })
  // six hours of bracelet data for two patients per tenant, a few spot measurements and alarms
  for (const t of ['care-a', 'care-b']) {
    for (const d of [`${t}-brc1`, `${t}-brc2`]) {
      const e = devices[d]!
      const c = await connectTls(node, d, e.secret)
      const s = new DeviceSealer({ tenant: t, device: d, keyId: 1, key: Buffer.from(e.key, 'base64url') })
      const m = createBraceletModel(d.length)
      await Promise.all(Array.from({ length: 360 }, (_, i) => { const f = s.seal('vitals', m.nextBatch(t0 + i * 60_000)); return c.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1 }) }))
      await c.endAsync()
    }
    const cv = devices[`${t}-cvk1`]!
    const c = await connectTls(node, cv.device, cv.secret)
    const s = new DeviceSealer({ tenant: t, device: cv.device, keyId: 1, key: Buffer.from(cv.key, 'base64url') })
    const f = s.seal('spot', { measuredAtMs: t0 + HOUR, meterModel: 'A&D UA-651BLE', systolic: 131, diastolic: 84, pulse: 71 })
    await c.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1 })
    await c.endAsync()
  }
  await node.storage.flush()
}, 120_000)

afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('accounts and sessions', () => {
  it('locks an account after repeated failed log-ins, even for the right password', async () => {
    await node.registry.createTenant('care-x', 'X')
    await createAdminClient(base(), node.adminToken).request('POST', '/admin/users', { tenant: 'care-x', user: 'victim', role: 'clinician', password: PASSWORD })
    for (let i = 0; i < 3; i++) expect((await call('POST', '/api/login', undefined, { tenant: 'care-x', user: 'victim', password: 'wrong password!!' })).status).toBe(401)
    const locked = await call('POST', '/api/login', undefined, { tenant: 'care-x', user: 'victim', password: PASSWORD })
    expect(locked.status).toBe(423)
    expect((await call('POST', '/api/login', undefined, { tenant: 'care-a', user: 'care-a-doc', password: PASSWORD })).status).toBe(200)
  })

  it('sessions end after idle time and after their absolute limit, and on log-out', async () => {
    const s = new Sessions({ idleMs: 1000, absoluteMs: 5000 })
    const p = { tenant: 't', user: 'u', role: 'clinician' as const }
    const { token } = s.open(p, 0)
    expect(s.check(token, 900)).toEqual(p)
    expect(s.check(token, 1800)).toEqual(p) // touched at 900: still within idle time
    expect(s.check(token, 2900)).toBeNull() // idle for 1100 ms
    const b = s.open(p, 0)
    for (let t = 800; t < 5000; t += 800) expect(s.check(b.token, t)).toEqual(p)
    expect(s.check(b.token, 5600)).toBeNull() // absolute limit, however active
    const token2 = await login('care-a', 'care-a-doc')
    expect((await call('GET', '/api/patients', token2)).status).toBe(200)
    expect((await call('POST', '/api/logout', token2)).status).toBe(204)
    expect((await call('GET', '/api/patients', token2)).status).toBe(401)
    expect((await call('GET', '/api/patients', 'forged-token')).status).toBe(401)
  })

  it('roles limit what each person can read', async () => {
    const doc = await login('care-a', 'care-a-doc')
    const res = await login('care-a', 'care-a-res')
    const resp = await login('care-a', 'care-a-resp')
    const root = await login('', 'root')
    expect((await call('GET', '/api/patients', doc)).status).toBe(200)
    for (const t of [res, resp, root]) expect((await call('GET', '/api/patients', t)).status).toBe(403)
    expect((await call('GET', '/api/alarms', resp)).status).toBe(200)
    expect((await call('GET', '/api/research/aggregate?metric=heart_rate', doc)).status).toBe(403)
    const agg = await call('GET', `/api/research/aggregate?metric=heart_rate&from=${t0}`, res)
    expect(agg.status).toBe(200)
    // only research-consented patients (p1, p2), aggregated: no patient id in the answer
    expect((agg.json as Array<{ patients: number }>).every((r) => Number(r.patients) === 2)).toBe(true)
    expect(agg.text).not.toMatch(/care-a-p\d/)
  })
})

describe('reads', () => {
  it('downsamples a series in one query: at most the requested buckets, min <= avg <= max, equal to brute force', async () => {
    const doc = await login('care-a', 'care-a-doc')
    const from = t0
    const to = t0 + 6 * HOUR
    for (const buckets of [1, 7, 100, 1000]) {
      const r = await call('GET', `/api/patients/care-a-p1/series?metric=heart_rate&from=${from}&to=${to}&buckets=${buckets}`, doc)
      const pts = r.json as Array<{ t: number; min: number; avg: number; max: number; n: number }>
      expect(pts.length).toBeLessThanOrEqual(buckets)
      expect(pts.length).toBeGreaterThan(0)
      const raw = await rowsOf<{ at: string; value: number }>(node, `SELECT toString(toUnixTimestamp64Milli(ts)) AS at, value FROM {db}.vital_samples
        WHERE tenant_id = 'care-a' AND patient_id = 'care-a-p1' AND metric = 'heart_rate' AND ts >= fromUnixTimestamp64Milli(${from}) AND ts < fromUnixTimestamp64Milli(${to})`)
      const width = Math.ceil((to - from) / buckets)
      const brute = new Map<number, number[]>()
      for (const x of raw) { const b = Math.floor((Number(x.at) - from) / width); brute.set(b, [...(brute.get(b) ?? []), x.value]) }
      expect(pts.map((p) => p.n).reduce((a, b) => a + b, 0)).toBe(raw.length)
      for (const p of pts) {
        expect(p.min).toBeLessThanOrEqual(p.avg + 1e-9)
        expect(p.avg).toBeLessThanOrEqual(p.max + 1e-9)
        const vs = brute.get(Math.round((p.t - from) / width))!
        expect(p.n).toBe(vs.length)
        expect(p.min).toBe(Math.min(...vs))
        expect(p.max).toBe(Math.max(...vs))
        expect(p.avg).toBeCloseTo(vs.reduce((a, b) => a + b, 0) / vs.length, 4)
      }
    }
  })

  it('serves latest vitals, spot measurements and devices of the own tenant', async () => {
    const doc = await login('care-a', 'care-a-doc')
    const latest = (await call('GET', '/api/patients/care-a-p1/latest', doc)).json as Array<{ metric: string }>
    expect(latest.map((l) => l.metric)).toContain('heart_rate')
    expect(latest.map((l) => l.metric)).not.toContain('battery')
    const spot = (await call('GET', `/api/patients/care-a-p1/spot?from=${t0}`, doc)).json as Array<Record<string, unknown>>
    expect(spot).toMatchObject([{ systolic: 131, diastolic: 84, pulse: 71 }])
    const openapi = (await call('GET', '/api/openapi.json')).json as { paths: Record<string, unknown> }
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/api/patients/{patient}/series', '/api/alarms/ack', '/api/login']))
  })
})

describe('tenant isolation', () => {
  const endpoints = (patient: string) => [
    `/api/patients/${patient}/latest`, `/api/patients/${patient}/series?metric=heart_rate&from=${t0}`, `/api/patients/${patient}/spot?from=${t0}`,
    `/api/patients/${patient}/alarms?from=${t0}`, '/api/patients', '/api/alarms?from=0', '/api/devices',
    '/api/patients/overview', `/api/patients/${patient}/charts?from=${t0}`, `/api/patients/${patient}/sleep?from=${t0}`, `/api/patients/${patient}/devices`,
  ]

  it('no response ever contains another tenant\'s data, and a foreign id is answered exactly like an unknown one', async () => {
    const tokens = { 'care-a': await login('care-a', 'care-a-doc'), 'care-b': await login('care-b', 'care-b-doc') }
    const patient = fc.oneof(fc.constantFrom('care-a-p1', 'care-a-p2', 'care-b-p1', 'care-b-p2', 'care-b-p3'), fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/))
    await fc.assert(fc.asyncProperty(fc.constantFrom<'care-a' | 'care-b'>('care-a', 'care-b'), patient, fc.nat(endpoints('x').length - 1), async (tenant, p, which) => {
      const other = tenant === 'care-a' ? 'care-b' : 'care-a'
      const path = endpoints(p)[which]!
      const r = await call('GET', path, tokens[tenant])
      expect(r.text).not.toContain(other)
      if (p.startsWith(other) || (!p.startsWith(tenant) && path.includes('/patients/'))) {
        const unknown = await call('GET', endpoints('no-such-patient')[which]!, tokens[tenant])
        expect([r.status, r.text]).toEqual([unknown.status, unknown.text])
      }
    }), { numRuns: 150 })
  }, 60_000)

  it('every SQL the API sends for a data table binds the tenant of the principal as a parameter', async () => {
    // the API reads through the requests connection (its own chDB connection in embedded mode)
    const client = node.storage.conn.requests.client
    const seen: Array<{ query: string; params: Record<string, unknown> }> = []
    const original = client.query.bind(client)
    client.query = async (p: Parameters<typeof client.query>[0]) => {
      seen.push({ query: p.query, params: (p.query_params ?? {}) })
      return await original(p)
    }
    try {
      const token = await login('care-b', 'care-b-doc')
      for (const path of endpoints('care-b-p1')) await call('GET', path, token)
      await call('POST', '/api/alarms/ack', token, { device: 'care-b-cal1', seq: 1 })
      await call('GET', '/api/research/aggregate?metric=heart_rate', await login('care-b', 'care-b-res'))
    } finally {
      client.query = original
    }
    const DATA = /\b(vital_samples|spot_measurements|alarm_events|device_status|alarm_acks|patients|rejected_messages|security_events)\b/
    const data = seen.filter((s) => DATA.test(s.query))
    expect(data.length).toBeGreaterThanOrEqual(8)
    for (const s of data) {
      expect(s.query).toContain('tenant_id = {tenant:String}')
      expect(s.query).not.toContain("'care-b'")
      expect(s.params['tenant']).toBe('care-b')
    }
  })
})

describe('real-time alarms', () => {
  it('reach the tenant\'s responders over MQTT and SSE (not other tenants\'), and are acknowledged with who and when', async () => {
    const responder = await node.registry.enrollDevice({ tenant: 'care-a', device: 'care-a-resp-app', family: 'responder', patient: null })
    const mq = await connectTls(node, responder.device, responder.secret)
    expect((await mq.subscribeAsync('v1/care-a/alerts', { qos: 1 }))[0]?.qos).toBe(1)
    await expect(mq.subscribeAsync('v1/care-b/alerts', { qos: 1 })).rejects.toThrow(/Subscribe error/)
    const viaMqtt = new Promise<Record<string, unknown>>((resolve) => { mq.once('message', (_t, payload) => { resolve(JSON.parse(payload.toString()) as Record<string, unknown>) }) })

    const sse = async (tenant: string, user: string) => {
      const r = await fetch(`${base()}/api/alarms/stream`, { headers: { authorization: `Bearer ${await login(tenant, user)}` } })
      const reader = r.body!.getReader()
      let buf = ''
      return {
        next: async (ms: number): Promise<string | null> => {
          const deadline = Date.now() + ms
          while (!buf.includes('event: alarm')) {
            const chunk = await Promise.race([reader.read(), new Promise<null>((resolve) => setTimeout(() => resolve(null), Math.max(1, deadline - Date.now())))])
            if (chunk === null || chunk.done) return null
            buf += new TextDecoder().decode(chunk.value)
          }
          return buf
        },
        close: () => reader.cancel(),
      }
    }
    const a = await sse('care-a', 'care-a-resp')
    const b = await sse('care-b', 'care-b-resp')

    const cal = devices['care-a-cal1']!
    const c = await connectTls(node, cal.device, cal.secret)
    const s = new DeviceSealer({ tenant: 'care-a', device: cal.device, keyId: 1, key: Buffer.from(cal.key, 'base64url') })
    const fall = { ...createAlarmModel(1).next(Date.now() - 500), kind: 2, location: { latitude: 52.1, longitude: 5.1, accuracyM: 9 } }
    const f = s.seal('alarm', fall)
    await c.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1 })

    expect(await viaMqtt).toMatchObject({ tenant: 'care-a', device: cal.device, seq: f.seq, kind: 'fall_detected', patient: 'care-a-p1', location: { latitude: 52.1 } })
    expect(await a.next(5000)).toContain(`"seq":${f.seq}`)
    expect(await b.next(300)).toBeNull()
    await a.close(); await b.close(); await mq.endAsync(); await c.endAsync()

    const token = await login('care-a', 'care-a-resp')
    expect((await call('POST', '/api/alarms/ack', token, { device: cal.device, seq: f.seq })).status).toBe(204)
    expect((await call('POST', '/api/alarms/ack', await login('care-b', 'care-b-resp'), { device: cal.device, seq: f.seq })).status).toBe(404)
    const list = (await call('GET', `/api/alarms?from=${Date.now() - HOUR}`, token)).json as Array<Record<string, unknown>>
    expect(list.find((x) => x['seq'] === String(f.seq))).toMatchObject({ kind: 'fall_detected', acknowledgedBy: 'care-a-resp' })
  }, 30_000)
})
