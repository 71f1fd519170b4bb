/**
 * The clinician and responder screens (issue 16) in Debian's chromium against a real node on port 0,
 * the browser talking to it through a TCP fault proxy (test/support/fault-proxy.ts) so the network
 * can really drop. Data comes from real mqtt.js device clients publishing sealed messages over TLS
 * (bracelets, a cVitals kit, a cAlarm). Checked against what ClickHouse holds:
 * - the patient list: one row per visible patient (a restricted one hidden), each latest vital,
 *   battery and open-alarm count equal to storage, read with one request (GET /api/patients/overview)
 *   that is access-logged per patient; the filters "SpO2 < 92 % in the last hour" and "no data for
 *   6 h"; the list refreshes by itself (its poll, driven by the page's clock) and shows a new value;
 * - the patient page: every metric chart, sleep stages (hypnogram runs), steps as bars (bucket sums),
 *   spot measurements (table and trends), alarm history with acknowledgements, devices over time,
 *   and zooming from the keyboard reads finer buckets of the new view;
 * - the alarm board: the network drops (connections reset, browser offline), the banner shows, a cAlarm
 *   publishes meanwhile (PUBACK; MQTT 5, with a Message Expiry of 1 s), and after the network is back
 *   the alarm is on the board without a reload (Last-Event-ID replay), marked stale, with a beep; the mute toggle silences the next one; acknowledging
 *   from the board reaches alarm_acks.
 * Every screen is checked with axe-core (no serious or critical violation) at tablet width.
 */
import mqtt from 'mqtt'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, createBraceletModel, createSpotModel, DeviceSealer } from '../devices/index.ts'
import { buildWeb, webBundleStale } from '../scripts/build-web.ts'
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.ts'
import { apiClient, axeViolations, launchChromium } from './support/browser.ts'
import { connectTls, publishAcked, rowsOf, startTestNode, tempDir } from './support/node.ts'
import { onPath, requireTool } from './support/tools.ts'

const it = requireTool('chromium')
const PASSWORD = 'correct horse battery staple'
const T = 'care-c'
const MIN = 60_000
const HOUR = 60 * MIN
const PATIENTS = ['c-p01', 'c-p02', 'c-p03', 'c-p04', 'c-p05', 'c-rx']
const TABLET = { width: 820, height: 1100 } // a tablet, portrait
const VITALS = ['heart_rate', 'spo2', 'respiration_rate', 'skin_temperature']

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let proxy: FaultProxy
let browser: Browser
const devices: Record<string, Enrollment> = {}
const alarmSeqs: string[] = []
const base = () => `http://127.0.0.1:${proxy.port}`
const direct = () => `http://127.0.0.1:${node.http.port}`

const api = apiClient(direct)
async function token (user: string): Promise<string> {
  return ((await api('POST', '/api/login', undefined, { tenant: T, user, password: PASSWORD })).json as { token: string }).token
}

async function expectAccessible (p: Page, screen: string): Promise<void> {
  const violations = await axeViolations(p)
  expect({ screen, violations }).toEqual({ screen, violations: [] })
}

async function openApp (user: string, context?: BrowserContext): Promise<Page> {
  const p = context === undefined ? await browser.newPage({ viewport: TABLET }) : await context.newPage()
  p.setDefaultTimeout(10_000)
  await p.goto(`${base()}/`)
  await p.getByLabel('Organisation (tenant)').fill(T)
  await p.getByLabel('User name').fill(user)
  await p.getByLabel('Password').fill(PASSWORD)
  await p.getByRole('button', { name: 'Log in' }).click()
  return p
}

const sealers = new Map<string, DeviceSealer>() // one per device: its sequence numbers go on across connections
async function sealerOf (d: string): Promise<{ c: Awaited<ReturnType<typeof connectTls>>; s: DeviceSealer }> {
  const e = devices[d]!
  let s = sealers.get(d)
  if (s === undefined) { s = new DeviceSealer({ tenant: T, device: d, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') }); sealers.set(d, s) }
  return { c: await connectTls(node, d, e.secret), s }
}

/** Bracelet batches, one a minute, from `from` for `minutes`; `edit` may change a batch before it is sealed. */
async function bracelet (d: string, seed: number, from: number, minutes: number, opts: { asleep?: boolean; edit?: (b: ReturnType<ReturnType<typeof createBraceletModel>['nextBatch']>, i: number) => void } = {}): Promise<void> {
  const { c, s } = await sealerOf(d)
  const m = createBraceletModel(seed, { asleep: () => opts.asleep === true })
  for (let i = 0; i < minutes; i++) {
    const b = m.nextBatch(from + i * MIN)
    opts.edit?.(b, i)
    const f = s.seal('vitals', b)
    expect(await publishAcked(c, f.topic, f.frame)).toBe(true)
  }
  await c.endAsync()
}

/** A button press; with `expiryS`, from an MQTT 5 cAlarm that gives it that Message Expiry Interval. */
async function alarm (d: string, expiryS?: number): Promise<string> {
  const { c: c311, s } = await sealerOf(d)
  const f = s.seal('alarm', createAlarmModel(alarmSeqs.length + 3, { pressProbability: 1 }).next(Date.now() - 500))
  let c = c311
  if (expiryS !== undefined) {
    await c311.endAsync()
    const e = devices[d]!
    c = await mqtt.connectAsync({ protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost', protocolVersion: 5, clientId: d, username: d, password: e.secret, reconnectPeriod: 0 })
    await c.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1, properties: { messageExpiryInterval: expiryS } })
  } else {
    expect(await publishAcked(c, f.topic, f.frame)).toBe(true)
  }
  await c.endAsync()
  alarmSeqs.push(String(f.seq))
  return String(f.seq)
}

beforeAll(async () => {
  if (!onPath('chromium')) return
  if (webBundleStale()) await buildWeb()
  dir = tempDir()
  node = await startTestNode(dir.path, { AUTH_FREE_FAILURES: 50 })
  proxy = await startFaultProxy({ host: '127.0.0.1', port: node.http.port })
  const admin = createAdminClient(direct(), node.adminToken)
  await node.registry.createTenant(T, T)
  for (const p of PATIENTS) {
    await node.registry.createPatient(T, p)
    for (const category of ['vitals', 'sleep', 'activity', 'spot_measurements'] as const) {
      await node.registry.recordConsent({ tenant: T, patient: p, purpose: 'care', category, action: 'grant', recordedBy: 'nurse', source: 'app', validFromMs: 0 })
    }
  }
  for (const [user, role] of [['doc', 'clinician'], ['resp', 'responder']] as const) await admin.request('POST', '/admin/users', { tenant: T, user, role, password: PASSWORD })
  for (const [d, family, patient] of [['c-brc1', 'bracelet', 'c-p01'], ['c-brc2', 'bracelet', 'c-p02'], ['c-brc3', 'bracelet', 'c-p03'], ['c-brc4', 'bracelet', 'c-p04'],
    ['c-brcx', 'bracelet', 'c-rx'], ['c-kit3', 'cvitals', 'c-p04'], ['c-cal3', 'calarm', 'c-p03']] as const) {
    devices[d] = await node.registry.enrollDevice({ tenant: T, device: d, family, patient })
  }
  const now = Date.now()
  await bracelet('c-brc1', 11, now - 50 * MIN, 50)
  // c-p02's last ten minutes have SpO2 below 92 %
  await bracelet('c-brc2', 12, now - 50 * MIN, 50, { edit: (b, i) => { if (i >= 40) b.spo2!.values = b.spo2!.values.map(() => 88) } })
  await bracelet('c-brc3', 13, now - 50 * MIN, 50, { asleep: true })
  await bracelet('c-brc4', 14, now - 8 * HOUR, 5) // eight hours old: "no data for 6 h"
  await bracelet('c-brcx', 15, now - 20 * MIN, 20)
  // the kit was c-p04's, then c-p03's from 3 days ago: measurements since then are c-p03's
  await node.registry.bindDevice(T, 'c-kit3', 'c-p03', now - 3 * 24 * HOUR)
  {
    const { c, s } = await sealerOf('c-kit3')
    const m = createSpotModel(21)
    for (let i = 0; i < 15; i++) {
      const f = s.seal('spot', m.next(now - (2 * 24 * HOUR) + i * 3 * HOUR))
      expect(await publishAcked(c, f.topic, f.frame)).toBe(true)
    }
    await c.endAsync()
  }
  await alarm('c-cal3')
  await alarm('c-cal3')
  await node.storage.flush()
  const resp = await token('resp')
  expect((await api('POST', '/api/alarms/ack', resp, { device: 'c-cal3', seq: alarmSeqs[0] })).status).toBe(204) // one acknowledged, one open
  await node.rights.setRestriction(T, 'c-rx', true, { user: 'dpo', role: 'tenant_admin' }, 'objection')
  browser = await launchChromium(['--autoplay-policy=no-user-gesture-required'])
}, 180_000)

afterAll(async () => {
  await browser?.close()
  await proxy?.close()
  await node?.close()
  dir?.remove()
})

interface Latest { patient: string; metric: string; v: number; at: string }

describe('clinician and responder screens', () => {
  it('the patient list: one row per visible patient from one request, values equal to storage, access-logged; filters; refreshes by itself', async () => {
    const context = await browser.newContext({ viewport: TABLET })
    const p = await context.newPage()
    p.setDefaultTimeout(10_000)
    await p.clock.install() // the page's timers and clock, so its 30 s poll can be run on without waiting
    const apiCalls: string[] = []
    p.on('request', (r) => { const u = new URL(r.url()); if (u.pathname.startsWith('/api/') && u.pathname !== '/api/login') apiCalls.push(u.pathname) })
    await p.goto(`${base()}/`)
    await p.getByLabel('Organisation (tenant)').fill(T)
    await p.getByLabel('User name').fill('doc')
    await p.getByLabel('Password').fill(PASSWORD)
    await p.getByRole('button', { name: 'Log in' }).click()
    await p.locator('p[data-read-at]').waitFor()
    // the list's own read is one request (the other is the app asking whether this role may read patients)
    expect(apiCalls.filter((u) => u !== '/api/patients')).toEqual(['/api/patients/overview'])

    const visible = PATIENTS.filter((x) => x !== 'c-rx')
    expect(await p.locator('tr[data-patient]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-patient')))).toEqual(visible)
    const stored = await rowsOf<Latest>(node, `SELECT patient_id AS patient, metric, argMax(value, ts) AS v, toString(toUnixTimestamp64Milli(max(ts))) AS at FROM {db}.vital_samples
      WHERE tenant_id = {t:String} AND metric IN {m:Array(String)} GROUP BY patient_id, metric`, { t: T, m: VITALS })
    const cells = await p.locator('tr[data-patient] td[data-metric]').evaluateAll((tds) => tds.map((td) => ({
      patient: td.closest('tr')!.getAttribute('data-patient'), metric: td.getAttribute('data-metric'), value: td.getAttribute('data-value'), at: td.getAttribute('data-at'),
    })))
    expect(cells).toHaveLength(visible.length * VITALS.length)
    for (const c of cells) {
      const s = stored.find((x) => x.patient === c.patient && x.metric === c.metric)
      expect({ ...c, value: c.value === '' ? null : Number(c.value), at: c.at === '' ? null : Number(c.at) })
        .toEqual({ ...c, value: s === undefined ? null : s.v, at: s === undefined ? null : Number(s.at) })
    }
    expect(cells.filter((c) => c.value !== '').length).toBeGreaterThanOrEqual(16) // four patients with every vital
    const battery = await rowsOf<{ device: string; b: number }>(node, `SELECT device_id AS device, argMax(value, ts) AS b FROM {db}.vital_samples
      WHERE tenant_id = {t:String} AND metric = 'battery' GROUP BY device_id`, { t: T })
    for (const [patient, d] of [['c-p01', 'c-brc1'], ['c-p02', 'c-brc2']]) {
      expect(Number(await p.locator(`tr[data-patient="${patient}"] td[data-battery]`).getAttribute('data-battery'))).toBe(battery.find((x) => x.device === d)!.b)
    }
    const open = await rowsOf<{ patient: string; n: number }>(node, `SELECT patient_id AS patient, count() AS n FROM {db}.alarm_events WHERE tenant_id = {t:String}
      AND kind IN ('button_press', 'fall_detected') AND (device_id, seq) NOT IN (SELECT device_id, seq FROM {db}.alarm_acks WHERE tenant_id = {t:String}) GROUP BY patient_id`, { t: T })
    expect(open.map((o) => [o.patient, Number(o.n)])).toEqual([['c-p03', 1]])
    for (const x of visible) expect([x, await p.locator(`tr[data-patient="${x}"] td[data-open]`).getAttribute('data-open')]).toEqual([x, x === 'c-p03' ? '1' : '0'])
    expect(await p.content()).not.toContain('c-rx')
    // access log: the overview read is one row per patient it showed
    const logged = await rowsOf<{ patient: string }>(node, `SELECT DISTINCT patient_id AS patient FROM {db}.access_log WHERE tenant_id = {t:String} AND user_id = 'doc'
      AND action = 'GET /api/patients/overview' ORDER BY patient`, { t: T })
    expect(logged.map((r) => r.patient)).toEqual(visible)
    await expectAccessible(p, 'patient list')

    // filters
    const which = p.getByLabel('Show')
    await which.selectOption('lowSpo2')
    expect(await p.locator('tr[data-patient]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-patient')))).toEqual(['c-p02'])
    expect(Number(await p.locator('tr[data-patient="c-p02"] td[data-metric="spo2"]').getAttribute('data-value'))).toBe(88)
    await which.selectOption('silent6h')
    expect(await p.locator('tr[data-patient]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-patient')))).toEqual(['c-p04', 'c-p05'])
    await which.selectOption('all')
    // sort by SpO2, keyboard only: lowest first
    await p.locator('button[data-sort="spo2"]').focus()
    await p.keyboard.press('Enter')
    const spo2 = (await p.locator('tr[data-patient] td[data-metric="spo2"]').evaluateAll((tds) => tds.map((td) => td.getAttribute('data-value')))).filter((v) => v !== '').map(Number)
    expect(spo2).toEqual([...spo2].sort((a, b) => a - b))
    expect(spo2[0]).toBe(88)

    // live: a new batch for c-p01 shows after the list's next poll, without a reload
    const before = Number(await p.locator('tr[data-patient="c-p01"] td[data-metric="heart_rate"]').getAttribute('data-at'))
    await bracelet('c-brc1', 99, Date.now(), 1)
    await node.storage.flush()
    const fresh = (await rowsOf<{ at: string }>(node, `SELECT toString(toUnixTimestamp64Milli(max(ts))) AS at FROM {db}.vital_samples WHERE tenant_id = {t:String}
      AND patient_id = 'c-p01' AND metric = 'heart_rate'`, { t: T }))[0]!.at
    expect(Number(fresh)).toBeGreaterThan(before)
    await p.clock.runFor(31_000)
    await p.locator(`tr[data-patient="c-p01"] td[data-metric="heart_rate"][data-at="${fresh}"]`).waitFor()
    await context.close()
  })

  it('the patient page: charts, hypnogram, steps, spot measurements, alarm history, devices over time, each equal to storage; keyboard zoom', async () => {
    const p = await openApp('doc')
    const doc = await token('doc')
    await p.locator('a[href="#/patients/c-p03"]').click()
    await p.locator('figure[data-kind="hypnogram"] .plot[data-points]').waitFor()
    const fig = p.locator('figure[data-metric="heart_rate"]')
    const [from, to] = [Number(await fig.getAttribute('data-from')), Number(await fig.getAttribute('data-to'))]
    // sleep: the hypnogram's runs are the stored epochs merged by stage
    const epochs = await rowsOf<{ at: string; stage: number; ms: number }>(node, `SELECT toString(toUnixTimestamp64Milli(ts)) AS at, toUInt8(value) AS stage, duration_ms AS ms FROM {db}.vital_samples
      WHERE tenant_id = {t:String} AND patient_id = 'c-p03' AND metric = 'sleep_stage' AND ts >= fromUnixTimestamp64Milli({f:Int64}) AND ts < fromUnixTimestamp64Milli({to:Int64}) ORDER BY ts`,
    { t: T, f: from, to })
    expect(epochs.length).toBeGreaterThan(50)
    let runs = 0
    epochs.forEach((e, i) => { const prev = epochs[i - 1]; if (prev === undefined || prev.stage !== e.stage || Math.abs(Number(prev.at) + prev.ms - Number(e.at)) > 1000) runs++ })
    expect(Number(await p.locator('figure[data-kind="hypnogram"]').getAttribute('data-runs'))).toBe(runs)
    expect(Number(await p.locator('figure[data-kind="hypnogram"] .plot').getAttribute('data-points'))).toBe(runs)

    // steps: bars, one per bucket with data, each the bucket's stored sum (c-p01 is awake and walks)
    await p.evaluate(() => { (globalThis as unknown as { location: { hash: string } }).location.hash = '#/patients/c-p01' })
    const steps = p.locator('figure[data-metric="steps"][data-kind="bars"]')
    await steps.locator('.plot[data-points]').waitFor()
    const [sf, st, sb] = [Number(await steps.getAttribute('data-from')), Number(await steps.getAttribute('data-to')), Number(await steps.getAttribute('data-buckets'))]
    const width = Math.ceil((st - sf) / sb)
    const sums = await rowsOf<{ b: string; s: number }>(node, `SELECT toString(intDiv(toUnixTimestamp64Milli(ts) - {f:Int64}, {w:Int64})) AS b, sum(value) AS s FROM {db}.vital_samples
      WHERE tenant_id = {t:String} AND patient_id = 'c-p01' AND metric = 'steps' AND ts >= fromUnixTimestamp64Milli({f:Int64}) AND ts < fromUnixTimestamp64Milli({to:Int64})
      GROUP BY b ORDER BY toInt64(b)`, { t: T, f: sf, to: st, w: width })
    expect(sums.length).toBeGreaterThan(10)
    expect(Number(await steps.locator('.plot').getAttribute('data-points'))).toBe(sums.length)
    const charts = (await api('GET', `/api/patients/c-p01/charts?from=${sf}&to=${st}&buckets=${sb}`, doc)).json as { metrics: Record<string, Array<{ sum: number }>> }
    expect(charts.metrics['steps']!.map((x) => x.sum)).toEqual(sums.map((x) => x.s))
    for (const m of VITALS) await p.locator(`figure[data-metric="${m}"][data-kind="band"] .plot[data-points]`).waitFor()

    // zoom in from the keyboard: the view halves around its middle and the charts are read again for it
    await p.locator('button[data-zoom="in"]').focus()
    await p.keyboard.press('Enter')
    await p.locator('figure[data-range="zoom"][data-metric="heart_rate"] .plot[data-points]').waitFor()
    const z = p.locator('figure[data-range="zoom"][data-metric="heart_rate"]')
    const [zf, zt] = [Number(await z.getAttribute('data-from')), Number(await z.getAttribute('data-to'))]
    expect(Math.abs((zt - zf) - (st - sf) / 2)).toBeLessThanOrEqual(1)
    const zoomed = (await api('GET', `/api/patients/c-p01/series?metric=heart_rate&from=${zf}&to=${zt}&buckets=240`, doc)).json as unknown[]
    expect(Number(await z.locator('.plot').getAttribute('data-points'))).toBe(zoomed.length)

    // spot measurements, alarm history and devices of c-p03
    await p.evaluate(() => { (globalThis as unknown as { location: { hash: string } }).location.hash = '#/patients/c-p03' })
    await p.locator('tr[data-spot-at]').first().waitFor()
    const spot = await rowsOf<{ at: string; systolic: number | null; diastolic: number | null; glucose: number | null; weight: number | null; spo2: number | null }>(node,
      `SELECT toString(toUnixTimestamp64Milli(ts)) AS at, systolic, diastolic, glucose, weight, spo2 FROM {db}.spot_measurements WHERE tenant_id = {t:String} AND patient_id = 'c-p03' ORDER BY ts DESC`, { t: T })
    expect(spot.length).toBe(15)
    const shownSpot = await p.locator('tr[data-spot-at]').evaluateAll((trs) => trs.map((tr) => ({
      at: tr.getAttribute('data-spot-at'),
      ...Object.fromEntries(['systolic', 'diastolic', 'glucose', 'weight', 'spo2'].map((c) => { const v = tr.querySelector(`td[data-col="${c}"]`)!.getAttribute('data-value'); return [c, v === '' ? null : Number(v)] })),
    })))
    expect(shownSpot).toEqual(spot)
    const withBp = spot.filter((s) => s.systolic !== null).length
    if (withBp > 0) expect(Number(await p.locator('figure[data-trend="systolic,diastolic"] .plot').getAttribute('data-points'))).toBe(withBp)
    const history = await p.locator('section[aria-labelledby="alarm-h"] tr[data-alarm]').evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-alarm'), tr.querySelector('[data-acked-by]')?.getAttribute('data-acked-by') ?? null]))
    expect(history.sort()).toEqual([[`c-cal3/${alarmSeqs[0]}`, 'resp'], [`c-cal3/${alarmSeqs[1]}`, null]].sort())
    const bindings = await rowsOf<{ device: string; from: string }>(node, `SELECT device_id AS device, toString(toUnixTimestamp64Milli(valid_from)) AS from FROM {db}.device_bindings
      WHERE tenant_id = {t:String} AND patient_id = 'c-p03' ORDER BY device`, { t: T })
    const shownDevices = await p.locator('tr[data-device]').evaluateAll((trs) => trs.map((tr) => ({ device: tr.getAttribute('data-device'), from: tr.getAttribute('data-from') })))
    expect(shownDevices.sort((a, b) => a.device! < b.device! ? -1 : 1)).toEqual(bindings.map((b) => ({ device: b.device, from: b.from })))
    expect(bindings.map((b) => b.device)).toEqual(['c-brc3', 'c-cal3', 'c-kit3'])
    await p.locator('figure[data-kind="hypnogram"] .plot[data-points]').waitFor()
    await expectAccessible(p, 'patient page')
    await p.screenshot({ path: 'docs/screenshots/patient-full.png', fullPage: true })
    await p.close()
  })

  it('the alarm board: the network drops, an alarm is published meanwhile, and it is on the board after reconnecting, with a beep; mute; acknowledge reaches storage', async () => {
    const context = await browser.newContext({ viewport: TABLET })
    const p = await openApp('resp', context)
    await p.waitForURL(/#\/alarms$/)
    await p.locator('[data-live="true"]').waitFor()
    await p.locator(`tr[data-alarm="c-cal3/${alarmSeqs[1]}"]`).waitFor()
    await expectAccessible(p, 'alarm board')
    const beeps = async (): Promise<number> => Number(await p.locator('main[data-beeps]').getAttribute('data-beeps'))
    expect(await beeps()).toBe(0)

    const streams: Array<string | undefined> = []
    p.on('request', (r) => { if (r.url().endsWith('/api/alarms/stream')) streams.push(r.headers()['last-event-id']) })
    // the network drops: every connection reset, the browser offline
    await context.setOffline(true)
    proxy.resetAll()
    await p.locator('[data-disconnected="true"]').waitFor()
    expect(await p.locator('[data-live="false"]').count()).toBe(1)
    // PUBACK: durable on the node while the board cannot hear it. From an MQTT 5 cAlarm that says it is
    // current for 1 s: by the time the board hears of it (after the 1.5 s below) it is stale
    const seq = await alarm('c-cal3', 1)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(await p.locator(`tr[data-alarm="c-cal3/${seq}"]`).count()).toBe(0)
    expect(await p.locator('[data-disconnected="true"]').count()).toBe(1)

    await context.setOffline(false)
    const row = p.locator(`tr[data-alarm="c-cal3/${seq}"]`)
    await row.waitFor()
    await p.locator('[data-live="true"]').waitFor()
    expect(await p.locator('[data-disconnected]').count()).toBe(0)
    expect(await row.getAttribute('class')).toBe('fresh')
    // still shown, marked stale (its Message Expiry had passed when the replay carried it)
    await row.locator('[data-stale="true"]').waitFor()
    // it resumed where it was: the stream asked again with the id of the last event it had
    expect(streams.at(-1)).toMatch(/^[0-9]+$/)
    await p.locator('.alert[role="alert"]').waitFor()
    await p.waitForFunction(() => Number((globalThis as unknown as { document: { querySelector: (s: string) => { getAttribute: (a: string) => string | null } | null } }).document.querySelector('main[data-beeps]')?.getAttribute('data-beeps')) === 1)
    await p.screenshot({ path: 'docs/screenshots/alarms-reconnected.png', fullPage: true })

    // muted: the next alarm is shown, without a beep
    await p.getByRole('button', { name: 'Sound on' }).click()
    await p.locator('button.mute[aria-pressed="true"]').waitFor()
    const quiet = await alarm('c-cal3')
    await p.locator(`tr[data-alarm="c-cal3/${quiet}"]`).waitFor()
    expect(await beeps()).toBe(1)

    await row.getByRole('button', { name: 'Acknowledge' }).click()
    await row.locator('[data-acked-by="resp"]').waitFor()
    const acks = await rowsOf<{ by: string }>(node, `SELECT acknowledged_by AS by FROM {db}.alarm_acks WHERE tenant_id = {t:String} AND device_id = 'c-cal3' AND seq = {seq:UInt64}`, { t: T, seq })
    expect(acks).toEqual([{ by: 'resp' }])
    await context.close()
  })

  it('the alarm stream replays from storage what was taken in after a Last-Event-ID, each alarm with its id', async () => {
    const resp = await token('resp')
    const stored = await rowsOf<{ device: string; seq: string; at: string }>(node, `SELECT device_id AS device, toString(seq) AS seq, toString(toUnixTimestamp64Milli(ingested_at)) AS at
      FROM {db}.alarm_events WHERE tenant_id = {t:String} AND kind IN ('button_press', 'fall_detected') ORDER BY ingested_at`, { t: T })
    expect(stored.length).toBe(4) // two from the set-up, two from the board's test
    const ctrl = new AbortController()
    const r = await fetch(`${direct()}/api/alarms/stream`, { headers: { authorization: `Bearer ${resp}`, 'last-event-id': stored[2]!.at }, signal: ctrl.signal })
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    while (!text.includes('event: ready')) text += (await reader.read()).value ?? ''
    ctrl.abort()
    const events = [...text.matchAll(/id: (\d+)\nevent: alarm\ndata: \{"seq":(\d+),"tenant":"[^"]+","device":"([^"]+)"/g)].map((m) => ({ device: m[3], seq: m[2], at: m[1] }))
    // everything taken in from 5 s before the id on (the replay's margin); here: all four, in order
    expect(events).toEqual(stored.filter((s) => Number(s.at) >= Number(stored[2]!.at) - 5000))
    expect(events.length).toBeGreaterThanOrEqual(2)
  })

  it('the alarm stream of a session that logged out ends before it carries another alarm', async () => {
    const resp = await token('resp')
    const r = await fetch(`${direct()}/api/alarms/stream`, { headers: { authorization: `Bearer ${resp}` } })
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    while (!text.includes('event: ready')) text += (await reader.read()).value ?? ''
    expect((await api('POST', '/api/logout', resp)).status).toBe(204)
    const seq = await alarm('c-cal3')
    let rest = ''
    for (;;) { const { value, done } = await reader.read(); if (done) break; rest += value }
    expect(rest).not.toContain(`"seq":${seq},`)
    expect(rest).not.toContain('event: alarm')
  })
})
