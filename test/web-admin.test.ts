/**
 * The tenant administrator's screens (web/src/admin) in a real browser (Debian's chromium via
 * playwright-core) against a real node on port 0, with real mqtt.js device clients: a consent
 * withdrawal made on the screen stops the next message's vitals (rows read back from storage);
 * a guardian's grant appears in the history and lets a minor's data in; the export downloads in
 * FHIR, NDJSON and CSV hold the stored values; erasure needs the typed id, then the receipt is
 * shown and downloads and the store holds none of the patient's rows; a device enrolled on the
 * screen connects with the secret shown once and its rows are stored, also after a key rotation
 * and with its binding changed; accounts, retention and legal hold set on the screens reach
 * storage; another organisation's ids answer "not found"; a clinician sees no admin screen and
 * the API answers 403. Every admin screen is checked with axe-core and for horizontal overflow
 * at tablet width, and saved under docs/screenshots/.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createBraceletModel, DeviceSealer } from '../devices/index.ts'
import { buildWeb, webBundleStale } from '../scripts/build-web.ts'
import { apiClient, axeViolations, launchChromium, type ApiAnswer } from './support/browser.ts'
import { connectTls, publishAcked, rowsOf, startTestNode, tempDir } from './support/node.ts'
import { onPath, requireTool } from './support/tools.ts'

const it = requireTool('chromium')
const SHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url))
const PASSWORD = 'correct horse battery staple'
const T = 'care-a'
const OTHER = 'care-b'
const MIN = 60_000
/** A tablet held upright: every admin screen must work at this width. */
const TABLET = { width: 820, height: 1180 }

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let browser: Browser
let context: BrowserContext
let page: Page
const cspViolations: string[] = []
const devices: Record<string, Enrollment> = {}
const sealers: Record<string, DeviceSealer> = {}
const base = (): string => `http://127.0.0.1:${node.http.port}`

const call = apiClient(base)
const api = async (method: string, path: string, token?: string, body?: unknown): Promise<ApiAnswer<any>> => await call<any>(method, path, token, body)
async function token (user: string, tenant = T, password = PASSWORD): Promise<string> {
  const r = await api('POST', '/api/login', undefined, { tenant, user, password })
  expect(r.status).toBe(200)
  return r.json.token as string
}

async function newPage (): Promise<Page> {
  const p = await context.newPage()
  p.setDefaultTimeout(10_000)
  p.on('console', (m) => { if (/Content[- ]Security[- ]Policy/i.test(m.text())) cspViolations.push(m.text()) })
  return p
}

/** axe-core in the page: no serious or critical violation; and nothing wider than the tablet's screen. */
async function expectUsable (p: Page, screen: string): Promise<void> {
  const violations = await axeViolations(p)
  expect({ screen, violations }).toEqual({ screen, violations: [] })
  // nothing sticks out to the right of the screen (a wide table scrolls inside its own region)
  const overflow = await p.evaluate(() => {
    const d = (globalThis as any).document
    const width = d.documentElement.clientWidth as number
    return [...d.querySelectorAll('body *')].filter((e: any) => e.getBoundingClientRect().right > width + 1 && e.closest('.scroll') === null)
      .map((e: any) => `${String(e.tagName).toLowerCase()}.${String(e.className)}`).slice(0, 5)
  })
  expect({ screen, overflow, scroll: await p.evaluate(() => { const d = (globalThis as any).document.documentElement; return d.scrollWidth - d.clientWidth }) }).toEqual({ screen, overflow: [], scroll: 0 })
}

async function shot (p: Page, name: string): Promise<void> {
  await p.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true })
}

async function logInThere (p: Page, user: string, tenant = T): Promise<void> {
  await p.getByLabel('Organisation (tenant)').fill(tenant)
  await p.getByLabel('User name').fill(user)
  await p.getByLabel('Password').fill(PASSWORD)
  await p.getByRole('button', { name: 'Log in' }).click()
}

async function go (p: Page, hash: string): Promise<void> {
  await p.evaluate((h) => { (globalThis as any).location.hash = h }, hash)
}

/** Publishes one bracelet batch (a minute of data at `at`) at QoS 1 over TLS; answers its sequence number once acknowledged. */
async function publishBatch (device: string, at: number, secret = devices[device]!.secret): Promise<number> {
  const c = await connectTls(node, device, secret)
  const f = sealers[device]!.seal('vitals', createBraceletModel(device.length * 7 + at % 97).nextBatch(at))
  expect(await publishAcked(c, f.topic, f.frame)).toBe(true)
  await c.endAsync()
  await node.storage.flush()
  return f.seq
}

async function enrol (tenant: string, device: string, patient: string): Promise<void> {
  const e = await node.registry.enrollDevice({ tenant, device, family: 'bracelet', patient })
  devices[device] = e
  sealers[device] = new DeviceSealer({ tenant, device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
}

async function vitalsRows (patient: string, device: string, seq: number, category = 'vitals'): Promise<number> {
  const [r] = await rowsOf<{ n: string }>(node, `SELECT count() AS n FROM {db}.vital_samples WHERE tenant_id = {t:String} AND patient_id = {p:String}
    AND device_id = {d:String} AND seq = {s:UInt64} AND category = {c:String}`, { t: T, p: patient, d: device, s: seq, c: category })
  return Number(r!.n)
}

/** The body of the next download the page starts with `click`. */
async function downloaded (p: Page, click: () => Promise<void>): Promise<{ name: string; text: string }> {
  const [d] = await Promise.all([p.waitForEvent('download'), click()])
  const path = await d.path()
  return { name: d.suggestedFilename(), text: readFileSync(path, 'utf8') }
}

beforeAll(async () => {
  if (!onPath('chromium')) return
  if (webBundleStale()) await buildWeb()
  mkdirSync(SHOTS, { recursive: true })
  dir = tempDir()
  node = await startTestNode(dir.path)
  for (const t of [T, OTHER]) await node.registry.createTenant(t, t === T ? 'Care A' : 'Care B')
  for (const p of ['a-p1', 'a-p2', 'a-p3']) {
    await node.registry.createPatient(T, p)
    await node.registry.recordConsent({ tenant: T, patient: p, purpose: 'care', category: 'vitals', action: 'grant', recordedBy: 'nurse', source: 'app', validFromMs: 0 })
  }
  await node.registry.createPatient(T, 'a-minor', `${new Date().getUTCFullYear() - 10}-03-01`) // ten years old: needs a guardian
  await node.registry.createPatient(OTHER, 'b-p1')
  await node.registry.recordConsent({ tenant: OTHER, patient: 'b-p1', purpose: 'care', category: 'vitals', action: 'grant', recordedBy: 'nurse', source: 'app', validFromMs: 0 })
  for (const [tenant, device, patient] of [[T, 'a-brc1', 'a-p1'], [T, 'a-brc2', 'a-p2'], [T, 'a-brc3', 'a-p3'], [T, 'a-brcm', 'a-minor'], [OTHER, 'b-brc1', 'b-p1']] as const) {
    await enrol(tenant, device, patient)
  }
  for (const [tenant, user, role] of [[T, 'admin', 'tenant_admin'], [T, 'doc', 'clinician'], [OTHER, 'admin-b', 'tenant_admin']] as const) {
    const r = await api('POST', '/admin/users', node.adminToken, { tenant, user, role, password: PASSWORD })
    expect(r.status).toBe(201)
  }
  // a few minutes of data for the export and the erasure
  const t0 = Date.now() - 30 * MIN
  for (const d of ['a-brc2', 'a-brc3', 'b-brc1']) for (let i = 0; i < 3; i++) await publishBatch(d, t0 + i * MIN)
  browser = await launchChromium()
  context = await browser.newContext({ viewport: TABLET, acceptDownloads: true })
  page = await newPage()
  await page.goto(`${base()}/`)
  await logInThere(page, 'admin')
  await page.waitForURL(/#\/patients$/)
}, 180_000)

afterAll(async () => {
  await browser?.close()
  await node?.close()
  dir?.remove()
})

describe('the tenant administrator\'s screens in chromium', () => {
  it('the admin list shows every patient of the tenant, none of another; a foreign or unknown id typed or navigated to is "not found"', async () => {
    await page.locator('nav[aria-label="main"] a[href="#/admin"]').click()
    await page.locator('tr[data-patient="a-p1"]').waitFor()
    expect(await page.locator('tr[data-patient]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-patient')))).toEqual(['a-minor', 'a-p1', 'a-p2', 'a-p3'])
    expect(await page.content()).not.toContain('b-p1')
    await page.getByText('No erasures yet.').waitFor()
    await expectUsable(page, 'admin patients')

    await page.getByLabel('Open a patient by pseudonymous id').fill('b-p1')
    await page.getByLabel('Open a patient by pseudonymous id').press('Enter')
    await page.locator('[data-not-found]').waitFor()
    expect(await page.locator('h1').textContent()).toBe('Patient not found.')
    for (const id of ['b-p1', 'nobody']) {
      await go(page, '#/admin')
      await page.locator('tr[data-patient="a-p1"]').waitFor()
      await go(page, `#/admin/patients/${id}`)
      await page.locator('[data-not-found]').waitFor()
      expect(await page.locator('form').count()).toBe(0) // no consent, hold or erasure form for it
    }
    await expectUsable(page, 'admin not found')
    // the API behind it: another tenant's patient and device answer as unknown ones
    const admin = await token('admin')
    expect((await api('GET', '/api/patients/b-p1/consent', admin)).status).toBe(404)
    expect((await api('POST', '/api/patients/b-p1/consent', admin, { category: 'vitals', action: 'withdraw' })).status).toBe(404)
    expect((await api('POST', '/api/tenant/devices/b-brc1/binding', admin, { patient: 'a-p1' })).status).toBe(404)
    expect((await api('POST', '/api/tenant/devices/b-brc1/keys', admin, {})).status).toBe(404)
    expect((await api('POST', '/api/tenant/devices/a-brc1/binding', admin, { patient: 'b-p1' })).status).toBe(404)
    expect((await api('POST', '/api/tenant/devices', admin, { device: 'a-x', family: 'bracelet', patient: 'b-p1' })).status).toBe(404)
    expect(node.registry.device('b-brc1')!.patient).toBe('b-p1')
    expect(node.registry.device('a-x')).toBeUndefined()
    expect((await api('GET', '/api/tenant/devices', admin)).json.map((d: { device: string }) => d.device)).toEqual(['a-brc1', 'a-brc2', 'a-brc3', 'a-brcm'])
  })

  it('a withdrawal recorded on the screen stops the next message\'s vitals: stored before, absent after', async () => {
    const before = await publishBatch('a-brc1', Date.now() - 5 * MIN)
    expect(await vitalsRows('a-p1', 'a-brc1', before)).toBeGreaterThan(0)

    await go(page, '#/admin/patients/a-p1')
    await page.locator('table.consent-history tr[data-version]').first().waitFor()
    await page.getByRole('radio', { name: 'Withdraw' }).check()
    await page.getByLabel('Category', { exact: true }).selectOption('vitals')
    await page.getByRole('button', { name: 'Record' }).click()
    await page.locator('.consent-form [role="status"]').waitFor()
    expect(await page.locator('.consent-form [role="status"]').textContent()).toMatch(/^Recorded \(version 2\)\.$/)
    await page.locator('tr[data-version="2"][data-action="withdraw"][data-category="vitals"]').waitFor()

    const after = await publishBatch('a-brc1', Date.now() - 4 * MIN)
    expect(after).toBeGreaterThan(before)
    expect(await vitalsRows('a-p1', 'a-brc1', before)).toBeGreaterThan(0) // processing that took place stays
    expect(await vitalsRows('a-p1', 'a-brc1', after)).toBe(0)
    const [logged] = await rowsOf(node, `SELECT action, category, purpose, recorded_by, source FROM {db}.consent_events
      WHERE tenant_id = {t:String} AND patient_id = 'a-p1' AND version = 2`, { t: T })
    expect(logged).toEqual({ action: 'withdraw', category: 'vitals', purpose: 'care', recorded_by: 'admin', source: 'professional' })
    // reading the history is a read of personal data: in the access log under the patient, with who read it
    const reads = await rowsOf<{ user_id: string; role: string }>(node, `SELECT user_id, role FROM {db}.access_log WHERE tenant_id = {t:String} AND patient_id = 'a-p1'
      AND action = 'GET /api/patients/{patient}/consent'`, { t: T })
    expect(reads.length).toBeGreaterThanOrEqual(2) // opened, and read again after the withdrawal
    expect(new Set(reads.map((r) => `${r.user_id}/${r.role}`))).toEqual(new Set(['admin/tenant_admin']))
  })

  it('a guardian\'s grant for a minor recorded on the screen appears in the history, and only it lets the minor\'s vitals in', async () => {
    const none = await publishBatch('a-brcm', Date.now())
    expect(await vitalsRows('a-minor', 'a-brcm', none)).toBe(0) // no consent yet
    await go(page, '#/admin/patients/a-minor')
    await page.getByText('No consent recorded yet.').waitFor()
    const grant = async (source: string, version: number): Promise<void> => {
      await page.getByRole('radio', { name: 'Grant' }).check()
      await page.getByLabel('Purpose').selectOption('care')
      await page.getByLabel('Category', { exact: true }).selectOption('vitals')
      await page.getByLabel('Source').selectOption(source)
      await page.getByRole('button', { name: 'Record' }).click()
      await page.locator(`table.consent-history tr[data-version="${version}"]`).waitFor()
    }
    // a professional's grant does not cover a patient under the minimum age
    await grant('professional', 1)
    const notCovered = await publishBatch('a-brcm', Date.now())
    expect(await vitalsRows('a-minor', 'a-brcm', notCovered)).toBe(0)
    await grant('guardian', 2)
    const row = page.locator('table.consent-history tr[data-version="2"][data-action="grant"][data-source="guardian"][data-category="vitals"]')
    await row.waitFor()
    expect(await row.textContent()).toContain('legal guardian')
    expect(await row.textContent()).toContain('admin')
    await shot(page, 'admin-patient')
    await expectUsable(page, 'admin patient (consent)')
    const logged = await rowsOf(node, `SELECT version, action, source, recorded_by FROM {db}.consent_events WHERE tenant_id = {t:String} AND patient_id = 'a-minor' ORDER BY version`, { t: T })
    expect(logged).toEqual([{ version: 1, action: 'grant', source: 'professional', recorded_by: 'admin' }, { version: 2, action: 'grant', source: 'guardian', recorded_by: 'admin' }])
    const stored = await publishBatch('a-brcm', Date.now())
    expect(await vitalsRows('a-minor', 'a-brcm', stored)).toBeGreaterThan(0)
  })

  it('the access report is shown readably with the stored row counts', async () => {
    await go(page, '#/admin/patients/a-p2')
    await page.getByRole('button', { name: 'Show access report' }).click()
    const vitals = page.locator('.report table.report-data tr[data-table="vital_samples"]')
    await vitals.first().waitFor()
    const [stored] = await rowsOf<{ n: string }>(node, `SELECT count() AS n FROM {db}.vital_samples WHERE tenant_id = {t:String} AND patient_id = 'a-p2'`, { t: T })
    const shown = await vitals.evaluateAll((rows) => rows.reduce<number>((n, r) => n + Number(r.getAttribute('data-rows')), 0))
    expect(shown).toBe(Number(stored!.n))
    expect(await page.locator('.report').textContent()).toContain('a-brc2 (Corsano bracelet)')
    expect(await page.locator('.report').textContent()).toContain('Care A')
    const report = await downloaded(page, async () => { await page.getByRole('button', { name: 'Download report (JSON)' }).click() })
    expect(JSON.parse(report.text)).toMatchObject({ tenant: T, patient: 'a-p2', legalHold: false })
    await shot(page, 'admin-access-report')
    await expectUsable(page, 'admin access report')
  })

  it('the export downloads in FHIR, NDJSON and CSV, each holding the stored heart-rate values', async () => {
    const stored = await rowsOf<{ seq: string; idx: number; value: number }>(node, `SELECT toString(seq) AS seq, idx, value FROM {db}.vital_samples
      WHERE tenant_id = {t:String} AND patient_id = 'a-p2' AND metric = 'heart_rate' ORDER BY ts, device_id, seq, idx`, { t: T })
    expect(stored.length).toBeGreaterThan(0)
    const key = (seq: string | number, idx: string | number): string => `a-brc2/${String(seq)}/${String(idx)}`
    const want = new Map(stored.map((r) => [key(r.seq, r.idx), r.value]))
    const sent: string[] = []
    const record = (r: import('playwright-core').Request): void => { sent.push(r.url()) }
    page.on('request', record)
    const files: Record<string, string> = {}
    for (const format of ['fhir', 'ndjson', 'csv']) {
      await page.getByLabel('Format').selectOption(format)
      const d = await downloaded(page, async () => { await page.getByRole('button', { name: 'Download export' }).click() })
      expect(d.name).toBe(`a-p2.${format === 'fhir' ? 'json' : format}`)
      files[format] = d.text
      await page.locator('form.right [role="status"]').filter({ hasText: `Downloaded a-p2.${format === 'fhir' ? 'json' : format}.` }).waitFor()
    }
    page.off('request', record)
    // the id went to the node only in the API's own path; the file was handed over by a blob: URL
    expect(sent.filter((u) => u.startsWith(base())).map((u) => new URL(u).pathname).filter((p) => p.includes('a-p2'))).toEqual(['/api/patients/a-p2/export', '/api/patients/a-p2/export', '/api/patients/a-p2/export'])

    const bundle = JSON.parse(files['fhir']!)
    expect(bundle.resourceType).toBe('Bundle')
    const hr = new Map<string, number>(bundle.entry.map((e: any) => e.resource)
      .filter((r: any) => r.resourceType === 'Observation' && r.code.coding.some((c: any) => c.code === '8867-4'))
      .map((r: any) => [r.identifier[0].value, r.valueQuantity.value]))
    expect([...hr.keys()].sort()).toEqual([...want.keys()].sort())
    for (const [k, v] of want) expect(hr.get(k)).toBeCloseTo(v, 3)

    const lines = files['ndjson']!.trim().split('\n').map((l) => JSON.parse(l))
    const nd = lines.filter((o) => o.table === 'vital_samples' && o.metric === 'heart_rate')
    expect(nd.map((o) => [key(o.seq, o.idx), o.value])).toEqual(stored.map((r) => [key(r.seq, r.idx), r.value]))

    const [header, ...rows] = files['csv']!.trim().split('\r\n').map((l) => l.split(','))
    expect(header).toEqual(['table', 'ts', 'device', 'seq', 'idx', 'metric', 'value', 'unit', 'loinc', 'extra'])
    expect(rows.filter((r) => r[0] === 'vital_samples' && r[5] === 'heart_rate').map((r) => [key(r[3]!, r[4]!), Number(r[6])])).toEqual(stored.map((r) => [key(r.seq, r.idx), r.value]))
  })

  it('legal hold and restriction set on the screen are stored, and a hold blocks erasure until lifted', async () => {
    await page.locator('form[data-flag="hold"]').getByLabel('Reason').fill('court case 2026/17')
    await page.getByRole('button', { name: 'Place legal hold' }).click()
    await page.locator('form[data-flag="hold"][data-on="true"]').waitFor()
    expect(node.rights.isHeld(T, 'a-p2')).toBe(true)
    const [hold] = await rowsOf(node, `SELECT action, reason, recorded_by FROM {db}.legal_holds WHERE tenant_id = {t:String} AND patient_id = 'a-p2'`, { t: T })
    expect(hold).toEqual({ action: 'hold', reason: 'court case 2026/17', recorded_by: 'admin' })
    // erasure is refused while held, and the screen says so
    await page.getByLabel('Type the pseudonymous id a-p2 to confirm').fill('a-p2')
    await page.getByRole('button', { name: 'Erase this patient' }).click()
    await page.locator('form.danger [data-error-code="ING_ERR_HELD"]').waitFor()
    expect(node.registry.hasPatient(T, 'a-p2')).toBe(true)
    await page.locator('form[data-flag="hold"]').getByLabel('Reason').fill('case closed')
    await page.getByRole('button', { name: 'Lift legal hold' }).click()
    await page.locator('form[data-flag="hold"][data-on="false"]').waitFor()
    expect(node.rights.isHeld(T, 'a-p2')).toBe(false)

    await page.locator('form[data-flag="restriction"]').getByLabel('Reason').fill('disputed accuracy')
    await page.getByRole('button', { name: 'Restrict processing' }).click()
    await page.locator('form[data-flag="restriction"][data-on="true"]').waitFor()
    expect(node.rights.isRestricted(T, 'a-p2')).toBe(true)
    const doc = await token('doc')
    expect((await api('GET', '/api/patients/a-p2/latest', doc)).status).toBe(404) // hidden from the clinician
    await go(page, '#/admin')
    await page.locator('tr[data-patient="a-p2"] .tag').waitFor()
    expect(await page.locator('tr[data-patient="a-p2"]').textContent()).toContain('Restricted')
    await go(page, '#/admin/patients/a-p2')
    await page.locator('form[data-flag="restriction"][data-on="true"]').getByLabel('Reason').fill('resolved')
    await page.getByRole('button', { name: 'Lift restriction' }).click()
    await page.locator('form[data-flag="restriction"][data-on="false"]').waitFor()
    expect(node.rights.isRestricted(T, 'a-p2')).toBe(false)
  })

  it('erasure needs the typed id; then the receipt is shown and downloads, and no row of the patient is left', async () => {
    const tables = await node.rights.patientTables()
    const rowsOfPatient = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {}
      for (const table of tables) {
        const [r] = await rowsOf<{ n: string }>(node, `SELECT count() AS n FROM {db}.${table} WHERE tenant_id = {t:String} AND patient_id = 'a-p3'`, { t: T })
        if (Number(r!.n) > 0) out[table] = Number(r!.n)
      }
      return out
    }
    expect((await rowsOfPatient())['vital_samples']).toBeGreaterThan(0)
    await go(page, '#/admin/patients/a-p3')
    const confirm = page.getByLabel('Type the pseudonymous id a-p3 to confirm')
    const button = page.getByRole('button', { name: 'Erase this patient' })
    await confirm.waitFor()
    expect(await button.isDisabled()).toBe(true)
    for (const wrong of ['a-p2', 'a-p', 'A-P3', 'a-p3 ']) {
      await confirm.fill(wrong)
      expect([wrong, await button.isDisabled()]).toEqual([wrong, true])
    }
    await confirm.press('Enter') // submitting with the wrong id does nothing either
    expect(node.registry.hasPatient(T, 'a-p3')).toBe(true)
    await confirm.fill('a-p3')
    expect(await button.isDisabled()).toBe(false)
    await shot(page, 'admin-erasure-confirm')
    await button.click()
    const receipt = page.locator('.erased dl.receipt[data-receipt-id]')
    await receipt.waitFor()
    const receiptId = await receipt.getAttribute('data-receipt-id')
    expect(await page.locator('.erased [role="status"]').textContent()).toContain('Erased.')
    expect(node.registry.hasPatient(T, 'a-p3')).toBe(false)
    expect(await rowsOfPatient()).toEqual({})
    const [stored] = await rowsOf<{ subject_hash: string; requested_by: string }>(node, `SELECT subject_hash, requested_by FROM {db}.erasure_receipts FINAL WHERE receipt_id = {r:String}`, { r: receiptId })
    expect(stored!.requested_by).toBe('admin')
    expect(await receipt.textContent()).toContain(stored!.subject_hash)
    const file = await downloaded(page, async () => { await page.getByRole('button', { name: 'Download receipt (JSON)' }).click() })
    expect(JSON.parse(file.text)).toMatchObject({ receiptId, subjectHash: stored!.subject_hash, tenant: T, scope: 'all', requestedBy: 'admin' })
    expect(file.text).not.toContain('a-p3')
    await shot(page, 'admin-erasure-receipt')
    await expectUsable(page, 'admin erasure receipt')
    // the tenant's receipts list it too
    await go(page, '#/admin')
    await page.locator(`li[data-receipt="${receiptId!}"]`).waitFor()
    expect(await page.locator('tr[data-patient="a-p3"]').count()).toBe(0)
    await shot(page, 'admin-patients')
    await expectUsable(page, 'admin patients with a receipt')
  })

  it('a device enrolled on the screen connects with the secret shown once and its rows are stored; rotate and rebind work too', async () => {
    await go(page, '#/admin/devices')
    await page.locator('tr[data-device="a-brc1"]').waitFor()
    await page.getByLabel('Device id').fill('a-new1')
    await page.getByLabel('Family').selectOption('bracelet')
    await page.getByLabel('Patient', { exact: true }).selectOption('a-p2')
    await page.getByRole('button', { name: 'Enrol', exact: true }).click()
    const once = page.locator('[data-once="a-new1"]')
    await once.waitFor()
    const secret = (await once.locator('[data-field="secret"]').textContent())!
    const key = (await once.locator('[data-field="key"]').textContent())!
    const keyId = Number(await once.locator('[data-field="keyId"]').textContent())
    expect(secret.length).toBeGreaterThan(20)
    const payload = await downloaded(page, async () => { await once.getByRole('button', { name: 'Download (JSON)' }).click() })
    expect(JSON.parse(payload.text)).toMatchObject({ tenant: T, device: 'a-new1', secret, key, keyId })
    await shot(page, 'admin-devices')
    await expectUsable(page, 'admin devices (enrolment shown once)')
    await page.locator('tr[data-device="a-new1"][data-patient="a-p2"]').waitFor()

    // a real MQTT client with what the screen showed
    devices['a-new1'] = { tenant: T, device: 'a-new1', family: 'bracelet', patient: 'a-p2', secret, keyId, key } as Enrollment
    sealers['a-new1'] = new DeviceSealer({ tenant: T, device: 'a-new1', keyId, key: Buffer.from(key, 'base64url') })
    const seq = await publishBatch('a-new1', Date.now() - MIN)
    expect(await vitalsRows('a-p2', 'a-new1', seq)).toBeGreaterThan(0)

    // shown once: closed, it is gone from the page, and the browser's storage never had it
    await once.getByRole('button', { name: 'Done: I stored it' }).click()
    await once.waitFor({ state: 'detached' })
    expect(await page.content()).not.toContain(secret)
    const stores = await page.evaluate(() => JSON.stringify([{ ...(globalThis as any).localStorage }, { ...(globalThis as any).sessionStorage }, (globalThis as any).document.cookie]))
    expect(stores).not.toContain(secret)
    expect(stores).not.toContain(key)

    // rotate: the new key opens the next message
    await page.getByRole('button', { name: 'Rotate key of a-new1' }).click()
    const rotated = page.locator('[data-once="a-new1"]')
    await rotated.waitFor()
    const newKey = (await rotated.locator('[data-field="key"]').textContent())!
    const newKeyId = Number(await rotated.locator('[data-field="keyId"]').textContent())
    expect([newKeyId, newKey === key, await rotated.locator('[data-field="secret"]').count()]).toEqual([keyId + 1, false, 0])
    sealers['a-new1'] = new DeviceSealer({ tenant: T, device: 'a-new1', keyId: newKeyId, key: Buffer.from(newKey, 'base64url') }, sealers['a-new1'].nextSeq)
    const seq2 = await publishBatch('a-new1', Date.now() - MIN / 2)
    expect(await vitalsRows('a-p2', 'a-new1', seq2)).toBeGreaterThan(0)
    await rotated.getByRole('button', { name: 'Done: I stored it' }).click()

    // bind to another patient, then unbind
    await page.getByLabel('Patient of a-new1').selectOption('a-p1')
    await page.getByRole('button', { name: 'Bind a-new1' }).click()
    await page.locator('tr[data-device="a-new1"][data-patient="a-p1"]').waitFor()
    expect(node.registry.device('a-new1')!.patient).toBe('a-p1')
    await page.getByLabel('Patient of a-new1').selectOption('')
    await page.getByRole('button', { name: 'Bind a-new1' }).click()
    await page.locator('tr[data-device="a-new1"][data-patient=""]').waitFor()
    expect(node.registry.device('a-new1')!.patient).toBeNull()
    const bindings = await rowsOf<{ p: string }>(node, `SELECT patient_id AS p FROM {db}.device_bindings WHERE tenant_id = {t:String} AND device_id = 'a-new1' ORDER BY valid_from`, { t: T })
    expect(bindings.map((b) => b.p)).toEqual(['a-p2', 'a-p1', ''])

    // the answer that carries a secret is never cached
    const r = await fetch(`${base()}/api/tenant/devices`, { method: 'POST', headers: { authorization: `Bearer ${await token('admin')}`, 'content-type': 'application/json' }, body: JSON.stringify({ device: 'a-cal9', family: 'calarm' }) })
    expect([r.status, r.headers.get('cache-control')]).toEqual([201, 'no-store'])
    expect(await r.json()).toMatchObject({ tenant: T, device: 'a-cal9', patient: null, secret: expect.any(String), key: expect.any(String) })
  })

  it('an account created on the users screen logs in with its role', async () => {
    await go(page, '#/admin/users')
    await page.locator('tr[data-user="doc"][data-role="clinician"]').waitFor()
    expect(await page.locator('tr[data-user]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-user')))).toEqual(['admin', 'doc'])
    await page.getByLabel('User name', { exact: true }).fill('night-desk')
    await page.getByLabel('Role').selectOption('responder')
    await page.getByLabel('Initial password (at least 12 characters)').fill('too short')
    await page.getByRole('button', { name: 'Create account' }).click()
    expect(await page.locator('tr[data-user="night-desk"]').count()).toBe(0) // the browser's own check (minlength) stops it
    await page.getByLabel('Initial password (at least 12 characters)').fill('a long initial password')
    await page.getByRole('button', { name: 'Create account' }).click()
    await page.locator('tr[data-user="night-desk"][data-role="responder"]').waitFor()
    await shot(page, 'admin-users')
    await expectUsable(page, 'admin users')
    const desk = await token('night-desk', T, 'a long initial password')
    expect((await api('GET', '/api/alarms', desk)).status).toBe(200)
    expect((await api('GET', '/api/patients', desk)).status).toBe(403)
    // the same name again is refused, and the screen shows it
    await page.getByLabel('User name', { exact: true }).fill('night-desk')
    await page.getByLabel('Initial password (at least 12 characters)').fill('another long password')
    await page.getByRole('button', { name: 'Create account' }).click()
    await page.locator('form [data-error-code="ING_ERR_CONFLICT"]').waitFor()
  })

  it('retention is set per category within the legal bounds; a value outside them is refused', async () => {
    await go(page, '#/admin/retention')
    const row = page.locator('tr[data-category="vitals"]')
    await row.waitFor()
    const input = page.getByLabel('Retention of vitals in days')
    const min = Number(await input.getAttribute('min'))
    const max = Number(await input.getAttribute('max'))
    expect(min).toBeGreaterThan(0)
    expect(max).toBeGreaterThan(min)
    await input.fill(String(min + 1))
    await page.getByRole('button', { name: 'Save the retention of vitals' }).click()
    await row.locator('[role="status"]').waitFor()
    const [stored] = await rowsOf<{ days: number; recorded_by: string }>(node, `SELECT days, recorded_by FROM {db}.tenant_retention FINAL WHERE tenant_id = {t:String} AND category = 'vitals'`, { t: T })
    expect(stored).toEqual({ days: min + 1, recorded_by: 'admin' })
    expect(node.rights.retentionDays(T, 'vitals')).toBe(min + 1)
    expect(node.rights.retentionDays(OTHER, 'vitals')).not.toBe(min + 1)
    // past the browser's own bound check, the node refuses too
    const admin = await token('admin')
    expect((await api('PUT', '/api/retention/vitals', admin, { days: max + 1 })).status).toBe(400)
    await shot(page, 'admin-retention')
    await expectUsable(page, 'admin retention')
  })

  it('works from the keyboard alone, and in Dutch', async () => {
    await go(page, '#/admin/devices')
    await page.locator('tr[data-device="a-cal9"][data-patient=""]').waitFor()
    const select = page.getByLabel('Patient of a-cal9')
    await select.focus()
    await select.selectOption('a-p1')
    await page.keyboard.press('Tab') // the next stop is this row's Bind button
    expect(await page.evaluate(() => (globalThis as any).document.activeElement.getAttribute('aria-label'))).toBe('Bind a-cal9')
    await page.keyboard.press('Enter')
    await page.locator('tr[data-device="a-cal9"][data-patient="a-p1"]').waitFor()
    expect(node.registry.device('a-cal9')!.patient).toBe('a-p1')

    await go(page, '#/admin/patients/a-p1')
    const radio = page.getByRole('radio', { name: 'Grant' })
    await radio.focus()
    await page.keyboard.press('Space')
    await page.getByLabel('Category', { exact: true }).selectOption('sleep')
    await page.getByRole('button', { name: 'Record' }).focus()
    await page.keyboard.press('Enter')
    await page.locator('table.consent-history tr[data-action="grant"][data-category="sleep"]').waitFor()

    await page.getByRole('button', { name: 'Nederlands' }).click()
    await page.locator('nav[aria-label="Beheer"] a[aria-current="page"]').filter({ hasText: 'Patiënten en rechten' }).waitFor()
    expect(await page.locator('h2#h-consent').textContent()).toBe('Toestemming')
    expect(await page.locator('table.consent-history').textContent()).toContain('slaap')
    expect(await page.evaluate(() => (globalThis as any).document.documentElement.lang)).toBe('nl')
    await expectUsable(page, 'admin patient (Dutch)')
    await page.getByRole('button', { name: 'English' }).click()
    await page.locator('h2#h-consent').filter({ hasText: 'Consent' }).waitFor()
  })

  it('a withdrawal with erasure removes the category\'s stored rows, keeps the others, and leaves a receipt', async () => {
    const rows = async (category: string): Promise<number> => Number((await rowsOf<{ n: string }>(node, `SELECT count() AS n FROM {db}.vital_samples
      WHERE tenant_id = {t:String} AND patient_id = 'a-p2' AND category = {c:String}`, { t: T, c: category }))[0]!.n)
    expect(await rows('vitals')).toBeGreaterThan(0)
    const diagnostics = await rows('device_diagnostics')
    expect(diagnostics).toBeGreaterThan(0)
    await go(page, '#/admin/patients/a-p2')
    await page.getByRole('radio', { name: 'Withdraw' }).check()
    await page.getByLabel('Category', { exact: true }).selectOption('vitals')
    await page.getByLabel('Also erase the stored data of this category').check()
    await page.getByRole('button', { name: 'Record' }).click()
    await page.locator('tr[data-action="withdraw"][data-category="vitals"]').waitFor()
    expect(await rows('vitals')).toBe(0)
    expect(await rows('device_diagnostics')).toBe(diagnostics) // legitimate interest, not consent: kept
    const receipts = await rowsOf<{ scope: string }>(node, `SELECT scope FROM {db}.erasure_receipts FINAL WHERE tenant_id = {t:String} AND requested_by = 'admin' ORDER BY requested_at`, { t: T })
    expect(receipts.at(-1)!.scope).toContain('vitals')
  })

  it('a clinician sees no administration screen, and the API answers 403', async () => {
    const p = await newPage()
    await p.goto(`${base()}/`)
    await logInThere(p, 'doc')
    await p.waitForURL(/#\/patients$/)
    await p.locator('nav[aria-label="main"] a[href="#/alarms"]').waitFor()
    expect(await p.locator('a[href^="#/admin"]').count()).toBe(0)
    for (const hash of ['#/admin', '#/admin/devices', '#/admin/patients/a-p1']) {
      await go(p, hash)
      await p.getByText('Your role may not read this.').waitFor()
      expect(await p.locator('form').count()).toBe(0)
    }
    await p.close()
    const doc = await token('doc')
    const calls: Array<[string, string, unknown?]> = [
      ['GET', '/api/tenant/patients'], ['GET', '/api/tenant/devices'], ['GET', '/api/tenant/users'], ['GET', '/api/tenant/retention'],
      ['GET', '/api/patients/a-p1/consent'], ['POST', '/api/patients/a-p1/consent', { category: 'vitals', action: 'grant' }],
      ['POST', '/api/tenant/devices', { device: 'doc-dev', family: 'bracelet' }], ['POST', '/api/tenant/devices/a-brc1/binding', { patient: null }],
      ['POST', '/api/tenant/devices/a-brc1/keys', {}], ['POST', '/api/tenant/users', { user: 'x', role: 'tenant_admin', password: 'a long initial password' }],
      ['GET', '/api/register'], ['GET', '/api/patients/a-p1/export?format=csv'], ['POST', '/api/patients/a-p1/erasure', {}],
    ]
    for (const [method, path, body] of calls) expect([method, path, (await api(method, path, doc, body)).status]).toEqual([method, path, 403])
    expect(node.registry.device('doc-dev')).toBeUndefined()
    expect(node.registry.device('a-brc1')!.patient).toBe('a-p1')
  })

  it('no page broke the Content-Security-Policy', () => {
    expect(cspViolations).toEqual([])
  })
})
