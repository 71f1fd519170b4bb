/**
 * The care web app (web/) in a real browser (Debian's chromium, driven by playwright-core) against
 * a real node on port 0, with data published by real mqtt.js device clients: log-in and the API's
 * refusals, the patient list's latest values against storage, the patient page's charts against
 * the API's buckets, a name kept on the device and sent in no request, "not found" for foreign and
 * unknown ids, session expiry and return, and the
 * responder's alarm board live from MQTT to an acknowledgement in storage. Every screen is checked
 * with axe-core (no serious or critical violations) and for CSP violations, and saved as a
 * screenshot under docs/screenshots/.
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, createBraceletModel, DeviceSealer } from '../devices/index.ts'
import { buildWeb, webBundleStale } from '../scripts/build-web.ts'
import { apiClient, axeViolations, launchChromium } from './support/browser.ts'
import { connectTls, publishAcked, rowsOf, startTestNode, tempDir } from './support/node.ts'
import { onPath, requireTool } from './support/tools.ts'

const it = requireTool('chromium')
const SHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url))
const PASSWORD = 'correct horse battery staple'
const T = 'care-w'
const OTHER = 'care-v'
const MIN = 60_000

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let browser: Browser
let page: Page
const cspViolations: string[] = []
const devices: Record<string, Enrollment> = {}
const base = () => `http://127.0.0.1:${node.http.port}`

const api = apiClient(base)
async function token (user: string): Promise<string> {
  const r = await api('POST', '/api/login', undefined, { tenant: T, user, password: PASSWORD })
  expect(r.status).toBe(200)
  return (r.json as { token: string }).token
}

async function newPage (): Promise<Page> {
  const p = await browser.newPage({ viewport: { width: 1024, height: 900 } })
  p.setDefaultTimeout(10_000) // a step that does not happen fails with its own line, before the test's timeout
  p.on('console', (m) => { if (/Content[- ]Security[- ]Policy/i.test(m.text())) cspViolations.push(m.text()) })
  return p
}

/** axe-core in the page (evaluated over the DevTools protocol, which the CSP does not govern): no serious or critical violation. */
async function expectAccessible (p: Page, screen: string): Promise<void> {
  const violations = await axeViolations(p)
  expect({ screen, violations }).toEqual({ screen, violations: [] })
}

async function shot (p: Page, name: string): Promise<void> {
  await p.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true })
}

async function logInThere (p: Page, user: string, password = PASSWORD): Promise<void> {
  await p.getByLabel('Organisation (tenant)').fill(T)
  await p.getByLabel('User name').fill(user)
  await p.getByLabel('Password').fill(password)
  await p.getByRole('button', { name: 'Log in' }).click()
}

beforeAll(async () => {
  if (!onPath('chromium')) return
  if (webBundleStale()) await buildWeb()
  mkdirSync(SHOTS, { recursive: true })
  dir = tempDir()
  // many free failures from one address: this file's wrong passwords all come from 127.0.0.1
  node = await startTestNode(dir.path, { LOGIN_MAX_FAILURES: 3, LOGIN_LOCK_MS: 600_000, AUTH_FREE_FAILURES: 50 })
  const admin = createAdminClient(base(), node.adminToken)
  for (const t of [T, OTHER]) {
    await node.registry.createTenant(t, t)
    for (const p of t === T ? ['w-p1', 'w-p2', 'w-p3'] : ['v-p1']) {
      await node.registry.createPatient(t, p)
      await node.registry.recordConsent({ tenant: t, patient: p, purpose: 'care', category: 'vitals', action: 'grant', recordedBy: 'nurse', source: 'app', validFromMs: 0 })
    }
  }
  for (const [user, role] of [['doc', 'clinician'], ['resp', 'responder'], ['victim', 'clinician']] as const) {
    await admin.request('POST', '/admin/users', { tenant: T, user, role, password: PASSWORD })
  }
  for (const [t, d, family, patient] of [[T, 'w-brc1', 'bracelet', 'w-p1'], [T, 'w-brc2', 'bracelet', 'w-p2'], [OTHER, 'v-brc1', 'bracelet', 'v-p1'], [T, 'w-cal1', 'calarm', 'w-p1']] as const) {
    devices[d] = await node.registry.enrollDevice({ tenant: t, device: d, family, patient })
  }
  // the last 50 minutes of bracelet data for w-p1, w-p2 (and v-p1 of the other tenant), at QoS 1 over TLS
  const t0 = Date.now() - 50 * MIN
  for (const [t, d] of [[T, 'w-brc1'], [T, 'w-brc2'], [OTHER, 'v-brc1']] as const) {
    const e = devices[d]!
    const c = await connectTls(node, d, e.secret)
    const s = new DeviceSealer({ tenant: t, device: d, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
    const m = createBraceletModel(d.charCodeAt(0) * 10 + d.charCodeAt(5)) // a different signal per device
    for (let i = 0; i < 50; i++) {
      const f = s.seal('vitals', m.nextBatch(t0 + i * MIN))
      expect(await publishAcked(c, f.topic, f.frame)).toBe(true)
    }
    await c.endAsync()
  }
  await node.storage.flush()
  browser = await launchChromium()
  page = await newPage()
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await node?.close()
  dir?.remove()
})

describe('the care web app in chromium', () => {
  it('is served on the API\'s port with the strict CSP; page requests for other paths get the app, API paths stay 404', async () => {
    const index = await fetch(`${base()}/`)
    expect(index.status).toBe(200)
    expect(await index.text()).toContain('<script type="module" src="/app.js">')
    expect(index.headers.get('content-security-policy')).toMatch(/script-src 'self'(;|$)/)
    expect(index.headers.get('cache-control')).toBe('no-store')
    const js = await fetch(`${base()}/app.js`)
    expect([js.status, js.headers.get('content-type')]).toEqual([200, expect.stringMatching(/javascript/)])
    expect(await js.text()).not.toContain('://cdn') // every body is read: an unread one keeps its connection busy and the node's close waits
    const page = await fetch(`${base()}/ward/3`, { headers: { accept: 'text/html' } })
    expect([page.status, await page.text()]).toEqual([200, expect.stringContaining('<div id="app">')])
    const json = await fetch(`${base()}/ward/3`)
    expect([json.status, await json.json()]).toEqual([404, { error: 'ING_ERR_NOT_FOUND', message: 'not found' }])
    for (const path of ['/api/nope', '/admin/nope', '/missing.js']) {
      const r = await fetch(`${base()}${path}`, { headers: { accept: 'text/html' } })
      expect([path, r.status, await r.json()]).toEqual([path, 404, { error: 'ING_ERR_NOT_FOUND', message: 'not found' }])
    }
  })

  it('log-in shows the API\'s refusals: a wrong password, then a locked account', async () => {
    await page.goto(`${base()}/`)
    await shot(page, 'login')
    await expectAccessible(page, 'log-in')
    await logInThere(page, 'doc', 'wrong password!!')
    const refusal = page.locator('p[role="alert"][data-error-code]')
    await refusal.waitFor()
    // what the API itself answers to the same attempt
    const wrong = (await api('POST', '/api/login', undefined, { tenant: T, user: 'doc', password: 'wrong password!!' })).json as { error: string; message: string }
    expect(await refusal.getAttribute('data-error-code')).toBe(wrong.error)
    expect((await refusal.textContent())!.toLowerCase()).toContain(wrong.message)
    await shot(page, 'login-refused')

    for (let i = 0; i < 3; i++) await api('POST', '/api/login', undefined, { tenant: T, user: 'victim', password: 'wrong password!!' })
    await page.getByLabel('User name').fill('victim')
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.locator('p[data-error-code="ING_ERR_LOCKED"]').waitFor()
    const locked = (await api('POST', '/api/login', undefined, { tenant: T, user: 'victim', password: PASSWORD })).json as { error: string; message: string }
    expect(locked.error).toBe('ING_ERR_LOCKED')
    expect((await page.locator('p[data-error-code="ING_ERR_LOCKED"]').textContent())!.toLowerCase()).toContain(locked.message)
  })

  it('the patient list shows the tenant\'s patients with the stored latest heart rate; sorting and the filter work', async () => {
    await logInThere(page, 'doc')
    await page.waitForURL(/#\/patients$/)
    const hr = page.locator('tr[data-patient="w-p1"] td[data-metric="heart_rate"]')
    await hr.waitFor()
    expect(await page.locator('tr[data-patient]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-patient')))).toEqual(['w-p1', 'w-p2', 'w-p3'])
    const doc = await token('doc')
    for (const p of ['w-p1', 'w-p2']) {
      const cell = page.locator(`tr[data-patient="${p}"] td[data-metric="heart_rate"]`)
      const fromApi = ((await api('GET', `/api/patients/${p}/latest`, doc)).json as Array<{ metric: string; value: number; at: number }>).find((l) => l.metric === 'heart_rate')!
      const stored = await rowsOf<{ v: number; at: string }>(node, `SELECT argMax(value, ts) AS v, toString(toUnixTimestamp64Milli(max(ts))) AS at FROM {db}.vital_samples
        WHERE tenant_id = {t:String} AND patient_id = {p:String} AND metric = 'heart_rate'`, { t: T, p })
      expect(Number(await cell.getAttribute('data-value'))).toBe(stored[0]!.v)
      expect(Number(await cell.getAttribute('data-value'))).toBe(fromApi.value)
      expect(Number(await cell.getAttribute('data-at'))).toBe(Number(stored[0]!.at))
      expect(await cell.textContent()).toContain(`${Math.round(stored[0]!.v)} bpm`)
    }
    expect(await page.locator('tr[data-patient="w-p3"] td[data-metric="heart_rate"]').getAttribute('data-value')).toBe('')
    expect(await page.content()).not.toContain('v-p1')
    await shot(page, 'patients')
    await expectAccessible(page, 'patient list')

    // sort by heart rate, descending on the second press, keyboard only
    await page.locator('button[data-sort="heart_rate"]').focus()
    await page.keyboard.press('Enter')
    await page.keyboard.press('Enter')
    const values = await page.locator('tr[data-patient] td[data-metric="heart_rate"]').evaluateAll((cells) => cells.map((c) => c.getAttribute('data-value')))
    const numbers = values.filter((v) => v !== '').map(Number)
    expect(numbers).toEqual([...numbers].sort((a, b) => b - a))
    expect(await page.locator('th[aria-sort="descending"]').count()).toBe(1)
    await page.getByLabel('Filter by id or name').fill('p2')
    expect(await page.locator('tr[data-patient]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-patient')))).toEqual(['w-p2'])
    await page.getByLabel('Filter by id or name').fill('')
  })

  it('the patient page draws each metric with exactly the API\'s buckets, for each range', async () => {
    await page.locator('a[href="#/patients/w-p1"]').click()
    const doc = await token('doc')
    for (const range of ['lastHour', 'last24h']) {
      if (range !== 'lastHour') await page.locator(`button[data-range="${range}"]`).click()
      await page.locator(`button[data-range="${range}"][aria-pressed="true"]`).waitFor()
      for (const metric of ['heart_rate', 'spo2', 'respiration_rate', 'skin_temperature']) {
        const fig = page.locator(`figure[data-range="${range}"][data-metric="${metric}"]`)
        await fig.locator('.plot[data-points]').waitFor()
        const [from, to, buckets, points] = [await fig.getAttribute('data-from'), await fig.getAttribute('data-to'), await fig.getAttribute('data-buckets'), await fig.locator('.plot').getAttribute('data-points')]
        const series = (await api('GET', `/api/patients/w-p1/series?metric=${metric}&from=${from}&to=${to}&buckets=${buckets}`, doc)).json as unknown[]
        expect(series.length).toBeGreaterThan(0)
        expect([range, metric, Number(points)]).toEqual([range, metric, series.length])
        expect(await fig.locator('canvas').count()).toBe(1)
      }
      if (range === 'lastHour') {
        await shot(page, 'patient')
        await expectAccessible(page, 'patient page')
      }
    }
  })

  it('a name given on this device stays in the browser: shown in the list, in no request', async () => {
    const NAME = 'Jansje Testpersoon'
    const sent: string[] = []
    const record = (r: import('playwright-core').Request): void => { sent.push(`${r.url()} ${JSON.stringify(r.headers())} ${r.postData() ?? ''}`) }
    page.on('request', record)
    await page.getByLabel('Name on this device only').fill(NAME)
    await page.getByRole('button', { name: 'Save name' }).click()
    await page.locator('a[href="#/patients"]').first().click()
    await page.locator('tr[data-patient="w-p1"] .local-name').waitFor()
    expect(await page.locator('tr[data-patient="w-p1"] .local-name').textContent()).toBe(NAME)
    await page.getByLabel('Filter by id or name').fill('jansje')
    expect(await page.locator('tr[data-patient]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-patient')))).toEqual(['w-p1'])
    await page.getByLabel('Filter by id or name').fill('')
    page.off('request', record)
    expect(sent.length).toBeGreaterThan(0) // the list was read again
    expect(sent.filter((x) => x.includes('Jansje') || x.includes('Testpersoon'))).toEqual([])
  })

  it('a foreign or unknown patient id shows "not found"', async () => {
    for (const id of ['v-p1', 'no-such-patient']) {
      await page.evaluate((p) => { (globalThis as unknown as { location: { hash: string } }).location.hash = `#/patients/${p}` }, id)
      await page.locator('[data-not-found]').waitFor()
      expect(await page.locator('h1').textContent()).toBe('Patient not found.')
      expect(await page.locator('canvas').count()).toBe(0)
    }
    await shot(page, 'not-found')
  })

  it('when the session ends, the log-in comes back and then returns to the page the user was on', async () => {
    const p = await newPage()
    let bearer = ''
    p.on('response', (r) => { if (r.url().endsWith('/api/login') && r.status() === 200) void r.json().then((j: { token: string }) => { bearer = j.token }) })
    await p.goto(`${base()}/#/patients/w-p2`)
    await logInThere(p, 'doc')
    await p.locator('figure[data-metric="heart_rate"] .plot[data-points]').waitFor()
    expect(bearer).not.toBe('')
    expect((await api('POST', '/api/logout', bearer)).status).toBe(204) // the session ends on the node
    await p.locator('button[data-range="last7d"]').click()
    await p.getByText('Your session ended').waitFor()
    expect(p.url()).toMatch(/#\/patients\/w-p2$/)
    await logInThere(p, 'doc')
    await p.locator('figure[data-metric="heart_rate"] .plot[data-points]').waitFor()
    expect(await p.locator('h1 .id').textContent()).toBe('w-p2')
    await p.close()
  })

  it('the responder\'s alarm board shows an alarm from a real MQTT client live, and acknowledging it there reaches storage', async () => {
    const p = await newPage()
    await p.goto(`${base()}/`)
    await p.getByRole('button', { name: 'Nederlands' }).click()
    expect(await p.getByLabel('Gebruikersnaam').count()).toBe(1)
    await p.getByRole('button', { name: 'English' }).click()
    await logInThere(p, 'resp')
    await p.waitForURL(/#\/alarms$/)
    await p.locator('[data-live="true"]').waitFor()
    expect(await p.locator('nav a[href="#/patients"]').count()).toBe(0) // a responder reads no patient list

    const e = devices['w-cal1']!
    const c = await connectTls(node, e.device, e.secret)
    const s = new DeviceSealer({ tenant: T, device: e.device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
    const f = s.seal('alarm', createAlarmModel(7, { pressProbability: 1 }).next(Date.now() - 1000))
    expect(await publishAcked(c, f.topic, f.frame)).toBe(true)
    await c.endAsync()

    const row = p.locator(`tr[data-alarm="w-cal1/${String(f.seq)}"]`)
    await row.waitFor()
    await p.locator('.alert[role="alert"]').waitFor()
    expect(await row.getAttribute('class')).toBe('fresh')
    expect(await row.textContent()).toContain('Button pressed')
    expect(await row.textContent()).toContain('w-p1')
    await shot(p, 'alarms')
    await expectAccessible(p, 'alarm board')

    await row.getByRole('button', { name: 'Acknowledge' }).click()
    await row.locator('[data-acked-by="resp"]').waitFor()
    const acks = await rowsOf<{ by: string }>(node, `SELECT acknowledged_by AS by FROM {db}.alarm_acks WHERE tenant_id = {t:String} AND device_id = 'w-cal1' AND seq = {seq:UInt64}`,
      { t: T, seq: String(f.seq) })
    expect(acks).toEqual([{ by: 'resp' }])
    expect(await p.locator('.alert').count()).toBe(0)
    await p.close()
  })

  it('no page broke the Content-Security-Policy', () => {
    expect(cspViolations).toEqual([])
  })
})
