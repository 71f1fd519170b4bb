/**
 * What the HTTP API answers (issue 14), over real HTTP on a real node: the
 * lock-out answers a real and an unknown account alike, tenant-wide reads are
 * logged per patient, error bodies never carry request data, every answer has
 * security headers and `Cache-Control: no-store`, and /api/devices lists every
 * enrolled device.
 */
import { STATUS_CODES, request } from 'node:http'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createAdminClient } from '../src/api/index.ts'
import { createAlarmModel, createStatusModel, DeviceSealer } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { connectTls, rowsOf, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const PASSWORD = 'correct horse battery staple'
const T = 'care-h'

interface Answer { status: number; statusText: string; headers: Record<string, string | string[] | undefined>; text: string; json: unknown }

/** One HTTP request from a chosen loopback address (the per-source back-off keys on it). */
async function http (method: string, path: string, opts: { from?: string; token?: string; body?: string; json?: unknown } = {}): Promise<Answer> {
  const body = opts.json !== undefined ? JSON.stringify(opts.json) : opts.body
  return await new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: node.http.port, method, path, agent: false, ...(opts.from === undefined ? {} : { localAddress: opts.from }),
      headers: {
        ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
      },
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => {
        let json: unknown = null
        try { json = JSON.parse(text) } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function login (user: string, from = '127.0.9.1'): Promise<string> {
  const r = await http('POST', '/api/login', { from, json: { tenant: T, user, password: PASSWORD } })
  expect(r.status).toBe(200)
  return (r.json as { token: string }).token
}

const devices: Record<string, Enrollment> = {}

beforeAll(async () => {
  dir = tempDir()
  // defaults that matter here: LOGIN_MAX_FAILURES 5, AUTH_FREE_FAILURES 5
  node = await startTestNode(dir.path, { LOGIN_MAX_FAILURES: 5, AUTH_FREE_FAILURES: 5, LOGIN_LOCK_MS: 60_000 })
  const admin = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
  await node.registry.createTenant(T, 'H')
  for (const p of ['h-p1', 'h-p2', 'h-p3']) {
    await node.registry.createPatient(T, p)
    for (const category of ['vitals', 'location'] as const) {
      await node.registry.recordConsent({ tenant: T, patient: p, purpose: 'care', category, action: 'grant', recordedBy: 'x', source: 'app', validFromMs: 0 })
    }
  }
  for (const [user, role] of [['doc', 'clinician'], ['resp', 'responder'], ['boss', 'tenant_admin'], ['victim', 'clinician'], ['other', 'clinician'], ['checker', 'clinician']] as const) {
    await admin.request('POST', '/admin/users', { tenant: T, user, role, password: PASSWORD })
  }
  for (const [d, family, patient] of [['h-cal1', 'calarm', 'h-p1'], ['h-cal2', 'calarm', 'h-p2'], ['h-brc-silent', 'bracelet', 'h-p3']] as const) {
    devices[d] = await node.registry.enrollDevice({ tenant: T, device: d, family, patient })
  }
  // one button press each from p1's and p2's alarms (p3 has none), and a status from h-cal1 only
  for (const d of ['h-cal1', 'h-cal2']) {
    const e = devices[d]!
    const c = await connectTls(node, d, e.secret)
    const s = new DeviceSealer({ tenant: T, device: d, keyId: 1, key: Buffer.from(e.key, 'base64url') })
    const press = s.seal('alarm', createAlarmModel(d.length, { pressProbability: 1 }).next(Date.now() - 60_000))
    await c.publishAsync(press.topic, Buffer.from(press.frame), { qos: 1 })
    if (d === 'h-cal1') {
      const st = s.seal('status', createStatusModel(1, 'calarm').next(Date.now() - 30_000))
      await c.publishAsync(st.topic, Buffer.from(st.frame), { qos: 1 })
    }
    await c.endAsync()
  }
  await node.storage.flush()
}, 120_000)

afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('the lock-out does not tell which accounts exist', () => {
  it('six wrong passwords get the same answers for a real and an unknown account, each after a hash', async () => {
    const attempt = async (user: string, from: string) => await http('POST', '/api/login', { from, json: { tenant: T, user, password: 'wrong password!!' } })
    const run = async (user: string, from: string): Promise<{ answers: Answer[]; hashes: number }> => {
      const before = node.hasher.stats().completed
      const answers: Answer[] = []
      for (let i = 0; i < 6; i++) answers.push(await attempt(user, from))
      return { answers, hashes: node.hasher.stats().completed - before }
    }
    const real = await run('victim', '127.0.8.1')
    const unknown = await run('nobody-here', '127.0.8.2')
    expect(real.answers.map((a) => a.status)).toEqual(unknown.answers.map((a) => a.status))
    expect(real.answers.at(-1)!.status).toBe(423)
    // every attempt, the locked ones too, costs one password hash
    expect(real.hashes).toBe(6)
    expect(unknown.hashes).toBe(6)
    for (let i = 0; i < 6; i++) {
      const a = real.answers[i]!
      const b = unknown.answers[i]!
      expect(a.text).toBe(b.text)
      expect(a.statusText).toBe(b.statusText)
      const names = (h: Answer['headers']) => Object.keys(h).sort()
      expect(names(a.headers)).toEqual(names(b.headers))
      for (const h of names(a.headers)) if (h !== 'date' && h !== 'retry-after') expect([h, a.headers[h]]).toEqual([h, b.headers[h]])
      if (a.headers['retry-after'] !== undefined) {
        expect(Number(a.headers['retry-after'])).toBeGreaterThan(0)
        expect(Number(b.headers['retry-after'])).toBeGreaterThan(0)
      }
    }
    // the per-source back-off still answers: the 7th failure from each address is refused without a check
    expect((await attempt('victim', '127.0.8.1')).status).toBe(429)
    expect((await attempt('nobody-here', '127.0.8.2')).status).toBe(429)
  })

  it('twelve failures from one address get a 429', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) {
      statuses.push((await http('POST', '/api/login', { from: '127.0.8.3', json: { tenant: T, user: i % 2 === 0 ? 'other' : `ghost${i}`, password: 'wrong password!!' } })).status)
    }
    expect(statuses).toContain(429)
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true)
  })
})

describe('reads of tenant-wide lists are logged per patient', () => {
  it('GET /api/alarms writes one access-log row per patient whose data it returned, and each access report shows it', async () => {
    const token = await login('resp')
    const list = await http('GET', '/api/alarms?from=0', { token })
    expect(list.status).toBe(200)
    const returned = [...new Set((list.json as Array<{ patient: string }>).map((a) => a.patient))].sort()
    expect(returned).toEqual(['h-p1', 'h-p2'])
    const rows = await rowsOf<{ patient_id: string }>(node, `SELECT patient_id FROM {db}.access_log
      WHERE tenant_id = {t:String} AND user_id = 'resp' AND action = 'GET /api/alarms' ORDER BY patient_id`, { t: T })
    expect(rows.map((r) => r.patient_id)).toEqual(['h-p1', 'h-p2'])

    const boss = await login('boss')
    for (const p of ['h-p1', 'h-p2']) {
      const report = await http('GET', `/api/patients/${p}/access-report`, { token: boss })
      expect(report.status).toBe(200)
      expect((report.json as { accessedBy: Array<{ user: string; action: string }> }).accessedBy).toEqual(
        expect.arrayContaining([expect.objectContaining({ user: 'resp', action: 'GET /api/alarms' })]))
    }
    const p3 = (await http('GET', '/api/patients/h-p3/access-report', { token: boss })).json as { accessedBy: Array<{ action: string }> }
    expect(p3.accessedBy.map((a) => a.action)).not.toContain('GET /api/alarms')
  })

  it('requests refused by validation (400) are not logged as reads', async () => {
    const token = await login('checker')
    for (const path of ['/api/alarms?from=-5', '/api/patients/bad!id/latest', '/api/patients/h-p1/series?metric=nope', '/api/patients/h-p1/spot?from=x']) {
      expect((await http('GET', path, { token })).status).toBe(400)
    }
    const rows = await rowsOf(node, `SELECT patient_id, action FROM {db}.access_log WHERE tenant_id = {t:String} AND user_id = 'checker'`, { t: T })
    expect(rows).toEqual([])
  })
})

describe('error bodies carry no request data', () => {
  it('a 5,000-character id gets 414 "URI Too Long" without the path in the body', async () => {
    const token = await login('doc')
    const long = 'x'.repeat(4990) + 'TAILMARK'
    const r = await http('GET', `/api/patients/${long}/latest`, { token })
    expect(r.status).toBe(414)
    expect(r.statusText).toBe('URI Too Long')
    expect(r.text).not.toContain('TAILMARK')
    expect(r.text).not.toContain('xxxxxxxx')
  })

  it('property: over random long and odd paths and bodies, error bodies never contain them, and the status text matches the status', async () => {
    const token = await login('doc')
    const PATH_CHARS = Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&\'()*+,;=:@%')
    const BODY_CHARS = [...PATH_CHARS, '"', '{', '}', '[', ']', ' ', '\\', '<', '>', '\u00e9', '\u4e2d']
    const segment = fc.string({ unit: fc.constantFrom(...PATH_CHARS), minLength: 12, maxLength: 6000 })
    const text = fc.string({ unit: fc.constantFrom(...BODY_CHARS), minLength: 12, maxLength: 3000 })
    /** No 10-character window of `s` appears in `body`. */
    const leaks = (body: string, s: string): string | null => {
      for (let i = 0; i + 10 <= s.length; i++) if (body.includes(s.slice(i, i + 10))) return s.slice(i, i + 10)
      return null
    }
    const decoded = (s: string): string => { try { return decodeURIComponent(s) } catch { return s } }
    const check = (r: Answer, secrets: string[]): void => {
      expect(r.statusText).toBe(STATUS_CODES[r.status])
      if (r.status < 400) return
      for (const s of secrets) expect(leaks(r.text, s)).toBeNull()
    }
    const cases = fc.oneof(
      fc.record({ kind: fc.constant('path' as const), seg: segment, where: fc.constantFrom('/api/patients/S/latest', '/api/patients/h-p1/series?metric=S', '/admin/tenants/S/devices', '/S', '/api/S', '/api/alarms?from=S') }),
      fc.record({ kind: fc.constant('raw' as const), body: text, where: fc.constantFrom('/api/login', '/admin/tenants', '/api/alarms/ack') }),
      fc.record({ kind: fc.constant('json' as const), value: text, where: fc.constantFrom('/api/login', '/admin/tenants', '/api/alarms/ack') }),
    )
    await fc.assert(fc.asyncProperty(cases, async (c) => {
      const auth = c.where.startsWith('/admin') ? node.adminToken : token
      if (c.kind === 'path') {
        const r = await http('GET', c.where.replace('S', c.seg), { token: auth })
        check(r, [c.seg, decoded(c.seg)])
      } else if (c.kind === 'raw') {
        const r = await http('POST', c.where, { token: auth, body: c.body, from: '127.0.7.1' })
        check(r, [c.body])
      } else {
        const json = { tenant: c.value, user: c.value, password: c.value, displayName: c.value, device: c.value, seq: c.value }
        const r = await http('POST', c.where, { token: auth, json, from: '127.0.7.2' })
        check(r, [c.value])
      }
    }), { numRuns: 120 })
  }, 120_000)
})

describe('headers', () => {
  const expectHardened = (r: Answer): void => {
    expect(r.headers['cache-control']).toBe('no-store')
    const csp = String(r.headers['content-security-policy'] ?? '')
    expect(csp).toMatch(/(^|;)\s*default-src 'self'/)
    expect(csp).toMatch(/(^|;)\s*script-src 'self'(;|$)/)
    expect(csp).not.toContain('unsafe-inline')
    expect(csp).toMatch(/frame-ancestors 'none'/)
    expect(r.headers['x-content-type-options']).toBe('nosniff')
    expect(r.headers['x-frame-options']).toBe('DENY')
    expect(r.headers['strict-transport-security']).toMatch(/max-age=\d+/)
    expect(r.headers['referrer-policy']).toBe('no-referrer')
  }

  it('the log-in answer, a personal-data read, an admin read and errors are not cacheable and carry security headers', async () => {
    const r = await http('POST', '/api/login', { from: '127.0.9.2', json: { tenant: T, user: 'doc', password: PASSWORD } })
    expect(r.status).toBe(200)
    expectHardened(r)
    const token = (r.json as { token: string }).token
    const read = await http('GET', '/api/patients/h-p1/alarms?from=0', { token })
    expect(read.status).toBe(200)
    expectHardened(read)
    const admin = await http('GET', `/admin/tenants/${T}/devices`, { token: node.adminToken })
    expect(admin.status).toBe(200)
    expectHardened(admin)
    for (const e of [await http('GET', '/api/patients/nobody/latest', { token }), await http('GET', '/api/patients', {}), await http('GET', '/no/such/route'), await http('GET', `/api/patients/${'y'.repeat(5000)}/latest`, { token })]) {
      expect(e.status).toBeGreaterThanOrEqual(400)
      expectHardened(e)
    }
  })
})

describe('/api/devices', () => {
  it('lists every enrolled device: one never seen with null last-seen, one that sent a status with its time', async () => {
    const token = await login('doc')
    const r = await http('GET', '/api/devices', { token })
    expect(r.status).toBe(200)
    const list = (r.json as { devices: Array<{ device: string; family: string; lastSeenAt: number | null; lastStatusAt: number | null }> }).devices
    expect(list.map((d) => d.device).sort()).toEqual(['h-brc-silent', 'h-cal1', 'h-cal2'])
    expect(list.find((d) => d.device === 'h-brc-silent')).toMatchObject({ family: 'bracelet', lastSeenAt: null, lastStatusAt: null })
    const seen = list.find((d) => d.device === 'h-cal1')!
    expect(typeof seen.lastSeenAt).toBe('number')
    expect(seen.lastSeenAt!).toBeGreaterThan(0)
    expect(typeof seen.lastStatusAt).toBe('number')
  })
})
