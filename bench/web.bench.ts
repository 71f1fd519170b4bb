/**
 * The care web app in Debian's chromium against a real node (port 0, embedded chDB), three cases,
 * each beside its baseline in the same run:
 * (a) patient page, 7 days of one bracelet at 1 sample/min for each of the 8 chart metrics (10,080
 *     points each) plus 7 nights of 30 s sleep epochs, written straight into vital_samples through the
 *     storage connection: first meaningful paint (vf:patient-shown) and chart-ready (vf:charts-ready)
 *     from the page's own performance marks, measured from the hash change (the bundle loaded and the
 *     user logged in), and the API beneath: the page's requests (Resource Timing) and, from Node, one
 *     /charts request against the 8 per-metric /series requests it replaces. Target chart-ready ≤ 1 s.
 * (b) patient list, 1,000 patients with a bracelet each and 24 h of the 4 list vitals and battery at
 *     1/min (7.2 M rows): from the hash change to the rows shown (vf:list-shown), one request
 *     (GET /api/patients/overview: one ClickHouse statement per table, three, for all patients); baseline: the old list's reads, run in the
 *     same page (GET /api/patients, /api/alarms and one /latest per patient, as Promise.all).
 *     Target render ≤ 500 ms.
 * (c) alarm board: a cAlarm publishes with mqtt.js at QoS 1, one every 200 ms; latency from just before
 *     publish (Date.now() in Node) to the row's frame on the board (performance.timeOrigin +
 *     performance.now() in the page, in the animation frame after the row is added), both the same
 *     machine's clock; baseline: a responder's mqtt.js subscription to v1/{tenant}/alerts in the same
 *     run. Target p99 ≤ 150 ms idle.
 * Usage: npx tsx bench/web.bench.ts [alarms=100] [rounds=5]
 */
import mqtt, { type MqttClient } from 'mqtt'
import { chromium, type Page } from 'playwright-core'
import { createAdminClient } from '../src/api/index.ts'
import { startNode } from '../src/pipeline/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { buildWeb, webBundleStale } from '../scripts/build-web.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const ALARMS = Number(process.argv[2] ?? 100)
const ROUNDS = Number(process.argv[3] ?? 5)
const PASSWORD = 'correct horse battery staple'
const T = 'bench-web'
const DAY = 86_400_000
const CHART_METRICS = ['heart_rate', 'hrv_rmssd', 'spo2', 'respiration_rate', 'skin_temperature', 'steps', 'active_energy', 'barometric_altitude']
const LIST_PATIENTS = 1000

const pct = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return Math.round((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN) * 10) / 10 }
const stats = (xs: number[]): Record<string, number> => ({ n: xs.length, p50Ms: pct(xs, 0.5), p99Ms: pct(xs, 0.99), maxMs: pct(xs, 1) })
/** The median of the runs that have the figure (a request that ended after the last mark has no entry in that run). */
const median = (xs: number[]): number => pct(xs.filter((x) => !Number.isNaN(x)), 0.5)

if (webBundleStale()) await buildWeb()
const dir = tempDir('vf-bench-web-')
const node = await startNode(testConfig(dir.path, { DEVICE_AUTH_COST: 10, LOG_LEVEL: 'silent', PUBLISH_RATE: 1000, PUBLISH_BURST: 10_000 }))
const base = `http://127.0.0.1:${node.http.port}`
const db = node.storage.conn.database
const exec = async (query: string): Promise<void> => { await node.storage.conn.client.command({ query }) }
await node.registry.createTenant(T, T)
const admin = createAdminClient(base, node.adminToken)
for (const [user, role] of [['doc', 'clinician'], ['resp', 'responder']] as const) await admin.request('POST', '/admin/users', { tenant: T, user, role, password: PASSWORD })
async function token (user: string): Promise<string> {
  const r = await fetch(`${base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: T, user, password: PASSWORD }) })
  return (await r.json() as { token: string }).token
}

// ---- set-up: rows straight into storage -----------------------------------------------------
process.stderr.write('web bench: writing 7 days of one bracelet and 24 h of 1,000 patients\n')
const now = Date.now()
await node.registry.createPatient(T, 'page-p')
await node.registry.enrollDevice({ tenant: T, device: 'page-brc', family: 'bracelet', patient: 'page-p' })
const provenance = `'care', 'vital_interest', 1, now64(3)`
// (a) 10,080 minutes x 8 metrics, and 7 nights of 30 s epochs (8 h each)
await exec(`INSERT INTO ${db}.vital_samples (tenant_id, patient_id, device_id, metric, category, ts, value, duration_ms, quality, seq, idx, purpose, legal_basis, consent_version, ingested_at)
  SELECT '${T}', 'page-p', 'page-brc', m.1, m.2, fromUnixTimestamp64Milli(toInt64(${now - 7 * DAY} + n.number * 60000)),
    toFloat32(m.3 + m.4 * sin(n.number / 37.0) + (n.number % 7)), if(m.2 = 'activity' AND m.1 != 'barometric_altitude', 60000, 0), 255, n.number, m.5, ${provenance}
  FROM numbers(${7 * 1440}) AS n
  CROSS JOIN (SELECT arrayJoin([('heart_rate', 'vitals', 70, 12, 0), ('hrv_rmssd', 'vitals', 45, 10, 1), ('spo2', 'vitals', 95, 2, 2), ('respiration_rate', 'vitals', 15, 3, 3),
    ('skin_temperature', 'vitals', 33, 1, 4), ('steps', 'activity', 40, 40, 5), ('active_energy', 'activity', 3, 2, 6), ('barometric_altitude', 'activity', 10, 5, 7)]) AS m) AS x`)
await exec(`INSERT INTO ${db}.vital_samples (tenant_id, patient_id, device_id, metric, category, ts, value, duration_ms, quality, seq, idx, purpose, legal_basis, consent_version, ingested_at)
  SELECT '${T}', 'page-p', 'page-brc', 'sleep_stage', 'sleep', fromUnixTimestamp64Milli(toInt64(${now - 7 * DAY} + intDiv(n.number, 960) * ${DAY} + (n.number % 960) * 30000)),
    toFloat32(1 + intDiv(n.number % 960, 40) % 4), 30000, 255, 100000 + n.number, 0, ${provenance}
  FROM numbers(${7 * 960}) AS n`)
// (b) 1,000 patients, a bracelet each, 24 h of the 4 list vitals and the battery at 1/min
for (let i = 0; i < LIST_PATIENTS; i++) {
  const p = `lp-${String(i).padStart(4, '0')}`
  await node.registry.createPatient(T, p)
  await node.registry.enrollDevice({ tenant: T, device: `lb-${String(i).padStart(4, '0')}`, family: 'bracelet', patient: p })
}
await exec(`INSERT INTO ${db}.vital_samples (tenant_id, patient_id, device_id, metric, category, ts, value, duration_ms, quality, seq, idx, purpose, legal_basis, consent_version, ingested_at)
  SELECT '${T}', concat('lp-', leftPad(toString(p.number), 4, '0')), concat('lb-', leftPad(toString(p.number), 4, '0')), m.1, m.2,
    fromUnixTimestamp64Milli(toInt64(${now - DAY} + n.number * 60000 + p.number)), toFloat32(m.3 + (p.number * 7 + n.number) % m.4), 0, 255, n.number, m.5, ${provenance}
  FROM numbers(${LIST_PATIENTS}) AS p CROSS JOIN numbers(1440) AS n
  CROSS JOIN (SELECT arrayJoin([('heart_rate', 'vitals', 55, 50, 0), ('spo2', 'vitals', 88, 12, 1), ('respiration_rate', 'vitals', 10, 15, 2), ('skin_temperature', 'vitals', 31, 5, 3),
    ('battery', 'device_diagnostics', 20, 80, 4)]) AS m) AS x`)
const rowCount = async (): Promise<number> => Number((await (await node.storage.conn.client.query({ query: `SELECT count() AS n FROM ${db}.vital_samples`, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n)
const rows = await rowCount()

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'] })
async function logIn (user: string): Promise<Page> {
  const p = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
  p.setDefaultTimeout(60_000)
  await p.goto(`${base}/`)
  await p.getByLabel('Organisation (tenant)').fill(T)
  await p.getByLabel('User name').fill(user)
  await p.getByLabel('Password').fill(PASSWORD)
  await p.getByRole('button', { name: 'Log in' }).click()
  return p
}

/**
 * From a hash change to the page's marks (ms), the marks cleared first; `leave` is a hash to go to
 * before, so the screen mounts afresh (an unknown patient: a 404 without a query, so embedded chDB,
 * which runs one query at a time, is idle when the measured screen starts).
 */
async function navigate (p: Page, leave: string, hash: string, marks: string[]): Promise<Record<string, number>> {
  await p.evaluate(`location.hash = ${JSON.stringify(leave)}`)
  await p.waitForTimeout(300)
  await p.evaluate(`performance.clearMarks(); performance.clearResourceTimings(); performance.mark('vf:nav'); location.hash = ${JSON.stringify(hash)}`)
  await p.waitForFunction((ms) => ms.every((m) => performance.getEntriesByName(m, 'mark').length > 0), marks, { timeout: 60_000, polling: 'raf' })
  // in the page: each mark's time after vf:nav, and each /api request's duration (Resource Timing)
  return await p.evaluate(`(() => {
    const nav = performance.getEntriesByName('vf:nav', 'mark')[0].startTime
    const out = {}
    for (const m of ${JSON.stringify(marks)}) out[m] = Math.round((performance.getEntriesByName(m, 'mark')[0].startTime - nav) * 10) / 10
    for (const r of performance.getEntriesByType('resource')) {
      const u = new URL(r.name)
      if (r.startTime < nav || u.pathname === '/api/alarms/stream') continue
      if (u.pathname === '/api/patients/overview') out['overview response end'] = Math.round((r.responseEnd - nav) * 10) / 10
      if (u.pathname.startsWith('/api/')) out['api ' + u.pathname.replace(new RegExp('^/api/patients/[^/]+/'), '/api/patients/{p}/')] = Math.round(r.duration * 10) / 10
    }
    return out
  })()`)
}

async function timed (f: () => Promise<unknown>): Promise<number> { const t0 = performance.now(); await f(); return performance.now() - t0 }

// ---- (a) patient page -------------------------------------------------------------------------
process.stderr.write('web bench: (a) patient page\n')
const doc = await token('doc')
const page = await logIn('doc')
await page.waitForURL(/#\/patients$/)
await page.locator('tr[data-patient]').first().waitFor({ timeout: 60_000 })
const pageRuns: Array<Record<string, number>> = []
for (let i = 0; i < ROUNDS + 1; i++) {
  const r = await navigate(page, '#/patients/no-such-patient', '#/patients/page-p/last7d', ['vf:patient-shown', 'vf:charts-ready'])
  if (i > 0) pageRuns.push(r) // the first is a warm-up
}
const points = Number(await page.locator('figure[data-metric="heart_rate"] .plot').getAttribute('data-points'))
const to = Date.now()
const from = to - 7 * DAY
const get = async (path: string): Promise<void> => { const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${doc}` } }); if (!r.ok) throw new Error(`${path}: ${r.status}`); await r.arrayBuffer() }
const oneCharts: number[] = []
const eightSeries: number[] = []
for (let i = 0; i < ROUNDS + 1; i++) {
  const a = await timed(() => get(`/api/patients/page-p/charts?from=${from}&to=${to}&buckets=240`))
  const b = await timed(() => Promise.all(CHART_METRICS.map((m) => get(`/api/patients/page-p/series?metric=${m}&from=${from}&to=${to}&buckets=240`))))
  if (i > 0) { oneCharts.push(a); eightSeries.push(b) }
}
const keysOf = Object.keys(pageRuns[0] ?? {})
const patientPage = {
  data: { metrics: CHART_METRICS.length, pointsPerMetric: 7 * 1440, sleepEpochs: 7 * 960, bucketsDrawnPerChart: points },
  targetChartReadyMs: 1000,
  medianOfRuns: Object.fromEntries(keysOf.map((k) => [k, median(pageRuns.map((r) => r[k] ?? NaN))])),
  runs: pageRuns.length,
  apiFromNode: { chartsOneRequestMs: Math.round(median(oneCharts) * 10) / 10, baselineSeriesEightRequestsMs: Math.round(median(eightSeries) * 10) / 10 },
}
await page.close()

// ---- (b) patient list of 1,000 ---------------------------------------------------------------
process.stderr.write('web bench: (b) patient list\n')
const list = await logIn('doc')
await list.waitForURL(/#\/patients$/)
await list.locator('tr[data-patient]').first().waitFor({ timeout: 60_000 })
const listRuns: Array<Record<string, number>> = []
for (let i = 0; i < ROUNDS + 1; i++) {
  const r = await navigate(list, '#/patients/no-such-patient', '#/patients', ['vf:list-shown', 'vf:list-complete'])
  if (i > 0) listRuns.push(r)
}
const shownRows = await list.locator('tr[data-patient]').count()
// baseline: the old list's reads (src before issue 16: web/src/patients.js load()), in the same page with a token of its own
const oldReads: number[] = []
for (let i = 0; i < 2; i++) { // two runs, no warm-up: each is 35 s
  const ms = await list.evaluate<number>(`(async () => {
    const g = async (path) => await (await fetch(path, { headers: { authorization: 'Bearer ${doc}' } })).json()
    const t0 = performance.now()
    const [patients] = await Promise.all([g('/api/patients'), g('/api/alarms?from=' + (Date.now() - 86400000))])
    await Promise.all(patients.map(async ({ patient }) => await g('/api/patients/' + encodeURIComponent(patient) + '/latest')))
    return performance.now() - t0
  })()`)
  oldReads.push(Math.round(ms))
}
const patientList = {
  data: { patients: LIST_PATIENTS, rowsShown: shownRows, vitalSamplesRows: rows },
  targetRenderMs: 500,
  overviewRequests: 1,
  clickhouseStatementsPerRead: { overview: 3, overviewNote: 'one per table (vital_samples, device_status, alarm_events), for all patients', baseline: LIST_PATIENTS + 2 },
  medianOfRuns: Object.fromEntries(Object.keys(listRuns[0] ?? {}).map((k) => [k, median(listRuns.map((r) => r[k] ?? NaN))])),
  runs: listRuns.length,
  baselinePerPatientLatest: { requests: LIST_PATIENTS + 2, dataReadMs: oldReads },
}
await list.close()

// ---- (c) alarm board -------------------------------------------------------------------------
process.stderr.write('web bench: (c) alarm board\n')
await node.registry.createPatient(T, 'alarm-p')
const cal = await node.registry.enrollDevice({ tenant: T, device: 'bench-cal', family: 'calarm', patient: 'alarm-p' })
const respE = await node.registry.enrollDevice({ tenant: T, device: 'bench-resp', family: 'responder', patient: null })
const connect = async (device: string, secret: string): Promise<MqttClient> => await mqtt.connectAsync({
  protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost', clientId: device, username: device, password: secret, reconnectPeriod: 0,
})
const responder = await connect('bench-resp', respE.secret)
await responder.subscribeAsync(`v1/${T}/alerts`, { qos: 1 })
const alarmClient = await connect('bench-cal', cal.secret)
const sealer = new DeviceSealer({ tenant: T, device: 'bench-cal', keyId: cal.keyId, key: Buffer.from(cal.key, 'base64url') })
const board = await logIn('resp')
await board.waitForURL(/#\/alarms$/)
await board.locator('[data-live="true"]').waitFor()
// in the page: when each alarm row is first in a frame, on the page's own clock (ms since the epoch)
await board.evaluate(`(() => {
  const seen = {}
  globalThis.vfSeen = seen
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (!(n instanceof Element)) continue
      for (const row of [n, ...n.querySelectorAll('tr[data-alarm]')]) {
        const k = row.getAttribute('data-alarm')
        if (k !== null && seen[k] === undefined) { seen[k] = -1; requestAnimationFrame(() => { seen[k] = performance.timeOrigin + performance.now() }) }
      }
    }
  }).observe(document.body, { childList: true, subtree: true })
})()`)
const sentAt = new Map<string, number>()
const mqttAt = new Map<string, number>()
responder.on('message', (_t, payload) => { const seq = /^\{"seq":(\d+)/.exec(payload.toString())?.[1]; if (seq !== undefined) mqttAt.set(seq, Date.now()) })
const model = createAlarmModel(1, { pressProbability: 1 })
for (let i = 0; i < ALARMS; i++) {
  const f = sealer.seal('alarm', model.next(Date.now() - 100))
  sentAt.set(String(f.seq), Date.now())
  alarmClient.publish(f.topic, Buffer.from(f.frame), { qos: 1 })
  await new Promise((resolve) => setTimeout(resolve, 200))
}
// every alarm should be on the board; one that is not after 20 s is reported as missing, not waited for
await board.waitForFunction((n) => Object.values((globalThis as unknown as { vfSeen: Record<string, number> }).vfSeen).filter((v) => v > 0).length >= n, sentAt.size, { timeout: 20_000 }).catch(() => {})
const seenAt = await board.evaluate<Record<string, number>>('globalThis.vfSeen')
const boardLat: number[] = []
const mqttLat: number[] = []
for (const [seq, t] of sentAt) {
  const b = seenAt[`bench-cal/${seq}`]
  if (b !== undefined && b > 0) boardLat.push(b - t)
  const m = mqttAt.get(seq)
  if (m !== undefined) mqttLat.push(m - t)
}
const alarmBoard = { targetP99Ms: 150, published: sentAt.size, missingOnBoard: sentAt.size - boardLat.length, board: stats(boardLat), baselineMqttResponder: stats(mqttLat) }

process.stdout.write(JSON.stringify({ benchmark: 'web', machine: machine(), patientPage, patientList, alarmBoard }, null, 2) + '\n')
await Promise.all([responder.endAsync(true), alarmClient.endAsync(true)])
await browser.close()
await node.close()
dir.remove()
