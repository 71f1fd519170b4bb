/**
 * Data-subject rights on a real node (aedes over TLS, real chDB): erasure
 * checked by scanning every table ClickHouse has (system.tables) and the
 * write-ahead log's files, legal hold, restriction, rectification, the access
 * audit and the access report, retention per tenant and the age rule.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { RightsError } from '../src/rights/index.ts'
import { createAlarmModel, createBraceletModel, createSpotModel, DeviceSealer } from '../devices/index.ts'
import { connectTls, count, rowsOf, startTestNode, tempDir } from './support/node.ts'

const T = 'care-r'
const PASSWORD = 'correct horse battery staple'
const MIN = 60_000
const t0 = Date.now() - 3 * 3_600_000
let dir: ReturnType<typeof tempDir>
let node: IngestNode
const devices: Record<string, Enrollment> = {}
const sealers: Record<string, DeviceSealer> = {}
const admin = { user: 'test-admin', role: 'tenant_admin' }
const base = () => `http://127.0.0.1:${node.http.port}`

async function call (method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
  const r = await fetch(base() + path, {
    method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body),
  })
  const text = await r.text()
  let json: unknown = null
  try { json = JSON.parse(text) } catch { /* not JSON */ }
  return { status: r.status, json, text }
}
async function login (user: string): Promise<string> {
  const r = await fetch(`${base()}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: T, user, password: PASSWORD }) })
  return ((await r.json()) as { token: string }).token
}

/** Publishes `n` messages of a device's family at QoS 1 and waits for every PUBACK. */
async function publish (device: string, stream: 'vitals' | 'spot' | 'alarm', n: number, from = t0): Promise<void> {
  const e = devices[device]!
  const c = await connectTls(node, device, e.secret)
  // one sealer per device for the whole file: sequence numbers keep rising across calls
  const s = sealers[device] ??= new DeviceSealer({ tenant: T, device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
  // always asleep, so every batch has sleep epochs whatever the hour the test runs at
  const bracelet = createBraceletModel(device.length, { asleep: () => true })
  const spot = createSpotModel(device.length)
  const alarm = createAlarmModel(device.length, { pressProbability: 1 })
  await Promise.all(Array.from({ length: n }, (_, i) => {
    const t = from + i * MIN
    const f = stream === 'vitals' ? s.seal('vitals', bracelet.nextBatch(t)) : stream === 'spot' ? s.seal('spot', spot.next(t)) : s.seal('alarm', { ...alarm.next(t), location: { latitude: 52.1, longitude: 5.1, accuracyM: 10 } })
    return c.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1 })
  }))
  await c.endAsync()
}

/** Tables (every one ClickHouse lists for our database) with a row whose text holds `needle`. */
async function tablesHolding (needle: string, settings = ''): Promise<Record<string, number>> {
  const tables = await rowsOf<{ name: string }>(node, `SELECT name FROM system.tables WHERE database = {db:String} AND engine NOT IN ('MaterializedView', 'View')`, { db: node.storage.conn.database })
  expect(tables.length).toBeGreaterThan(15)
  const out: Record<string, number> = {}
  for (const { name } of tables) {
    const n = Number((await rowsOf<{ n: string }>(node, `SELECT count() AS n FROM {db}.${name} WHERE position(toString(tuple(*)), {needle:String}) > 0 ${settings}`, { needle }))[0]!.n)
    if (n > 0) out[name] = n
  }
  return out
}

beforeAll(async () => {
  dir = tempDir('vf-rights-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant(T, 'Rights test care')
  for (const p of ['r-p1', 'r-p2']) {
    await node.registry.createPatient(T, p)
    for (const category of ['vitals', 'sleep', 'activity', 'spot_measurements', 'location'] as const) {
      await node.registry.recordConsent({ tenant: T, patient: p, purpose: 'care', category, action: 'grant', recordedBy: 'nurse', source: 'app', validFromMs: 0 })
    }
  }
  const api = createAdminClient(base(), node.adminToken)
  for (const [user, role] of [['r-doc', 'clinician'], ['r-boss', 'tenant_admin']] as const) await api.request('POST', '/admin/users', { tenant: T, user, role, password: PASSWORD })
  for (const [d, family, patient] of [['r-brc1', 'bracelet', 'r-p1'], ['r-cvk1', 'cvitals', 'r-p1'], ['r-cal1', 'calarm', 'r-p1'], ['r-brc2', 'bracelet', 'r-p2']] as const) {
    devices[d] = await node.registry.enrollDevice({ tenant: T, device: d, family, patient })
  }
  await publish('r-brc1', 'vitals', 20)
  await publish('r-cvk1', 'spot', 5)
  await publish('r-cal1', 'alarm', 3)
  await publish('r-brc2', 'vitals', 20)
  await node.storage.flush()
}, 120_000)

afterAll(async () => { await node?.close(); dir?.remove() })

describe('access audit and access report', () => {
  it('logs every clinician read with who, which patient and from where, and the report lists it', async () => {
    const doc = await login('r-doc')
    expect((await call('GET', '/api/patients/r-p1/latest', doc)).status).toBe(200)
    expect((await call('GET', '/api/patients/r-p1/series?metric=heart_rate', doc)).status).toBe(200)
    const log = await rowsOf<{ user_id: string; role: string; action: string; remote_address: string }>(node,
      `SELECT user_id, role, action, remote_address FROM {db}.access_log WHERE tenant_id = {t:String} AND patient_id = 'r-p1' ORDER BY ts`, { t: T })
    expect(log.map((l) => l.action)).toEqual(expect.arrayContaining(['GET /api/patients/{patient}/latest', 'GET /api/patients/{patient}/series']))
    expect(log.every((l) => l.user_id === 'r-doc' && l.role === 'clinician' && l.remote_address !== '')).toBe(true)

    const report = await node.rights.accessReport(T, 'r-p1')
    expect(report.accessedBy.map((a) => a['user'])).toContain('r-doc')
    const byTable = Object.fromEntries(report.data.map((d) => [`${d.table}:${d.categories.join('+')}`, d]))
    // row counts straight from ClickHouse, independently of the report's own query
    const vitals = await count(node, 'vital_samples', "tenant_id = {t:String} AND patient_id = 'r-p1' AND category = 'vitals'", { t: T })
    expect(byTable['vital_samples:vitals']).toMatchObject({ rows: vitals, purpose: 'care', legalBasis: 'consent', retentionDays: 7305 })
    expect(byTable['vital_samples:vitals']!.source).toEqual([{ device: 'r-brc1', family: 'bracelet' }])
    expect(byTable['alarm_events:alarm_events+location']).toMatchObject({ legalBasis: 'contract', rows: 3 })
    expect(byTable['spot_measurements:spot_measurements']!.recipients.length).toBeGreaterThan(0)
    expect(report.consent).toHaveLength(5)
    expect(report.processing.map((p) => p.purpose)).toEqual(expect.arrayContaining(['care', 'research', 'service_operation']))
  })
})

describe('restriction', () => {
  it('hides the patient from every clinician read, keeps storing new data, and the export still has it', async () => {
    const doc = await login('r-doc')
    const boss = await login('r-boss')
    expect((await call('POST', '/api/patients/r-p2/restriction', boss, { restrict: true, reason: 'dispute 2026-17' })).status).toBe(200)
    expect((await call('GET', '/api/patients/r-p2/latest', doc)).status).toBe(404)
    expect((await call('GET', '/api/patients', doc)).json.map((p: { patient: string }) => p.patient)).not.toContain('r-p2')
    const before = await count(node, 'vital_samples', "patient_id = 'r-p2'")
    await publish('r-brc2', 'vitals', 2, t0 + 30 * MIN)
    expect(await count(node, 'vital_samples', "patient_id = 'r-p2'")).toBeGreaterThan(before)
    const exported = await call('GET', '/api/patients/r-p2/export?format=ndjson', boss)
    expect(exported.status).toBe(200)
    expect(exported.text.trim().split('\n').length).toBeGreaterThanOrEqual(before)
    expect((await call('POST', '/api/patients/r-p2/restriction', boss, { restrict: false, reason: 'resolved' })).status).toBe(200)
    expect((await call('GET', '/api/patients/r-p2/latest', doc)).status).toBe(200)
  })
})

describe('rectification', () => {
  it('shows the correction on reads while the audit keeps the original and the correction', async () => {
    const doc = await login('r-doc')
    const [sample] = await rowsOf<{ device_id: string; seq: string; idx: number; value: number; ts: string }>(node,
      `SELECT device_id, toString(seq) AS seq, idx, value, toString(toUnixTimestamp64Milli(ts)) AS ts FROM {db}.vital_samples
       WHERE patient_id = 'r-p1' AND metric = 'heart_rate' ORDER BY ts DESC LIMIT 1`)
    const r = await call('POST', '/api/patients/r-p1/rectifications', doc, { target: 'vital_samples.value', device: sample!.device_id, seq: Number(sample!.seq), idx: sample!.idx, corrected: 61, reason: 'motion artefact' })
    expect(r.status).toBe(200)
    expect(r.json).toEqual({ original: sample!.value, corrected: 61 })
    const latest = (await call('GET', '/api/patients/r-p1/latest', doc)).json as Array<{ metric: string; value: number }>
    expect(latest.find((l) => l.metric === 'heart_rate')!.value).toBe(61)
    const audit = await rowsOf<{ original: number; corrected: number; recorded_by: string }>(node, `SELECT original, corrected, recorded_by FROM {db}.rectifications WHERE patient_id = 'r-p1'`)
    expect(audit).toEqual([{ original: sample!.value, corrected: 61, recorded_by: 'r-doc' }])
    const missing = await call('POST', '/api/patients/r-p1/rectifications', doc, { target: 'vital_samples.value', device: sample!.device_id, seq: 999_999, idx: 0, corrected: 1, reason: 'x' })
    expect(missing.status).toBe(404)
  })
})

describe('retention', () => {
  it('a tenant period within the legal bounds becomes a TTL; held patients are kept; out-of-bounds periods are refused', async () => {
    await expect(node.rights.setRetention(T, 'device_diagnostics', 5, admin)).rejects.toThrow(RightsError)
    await expect(node.rights.setRetention(T, 'access_logs', 365, admin)).rejects.toThrow(/access_logs must be/)
    await node.rights.setRetention(T, 'device_diagnostics', 30, admin)
    await node.rights.setHold(T, 'r-p1', true, admin, 'case 42')
    const ddl = (await rowsOf<{ statement: string }>(node, 'SHOW CREATE TABLE {db}.device_status'))[0]!.statement
    expect(ddl).toContain(`toIntervalDay(30) WHERE (tenant_id = '${T}') AND ((tenant_id, patient_id) NOT IN ('care-r', 'r-p1'))`)
    // two status rows 40 days old: the held patient's survives the TTL merge, the other's does not
    const old = Date.now() - 40 * 86_400_000
    for (const [p, device] of [['r-p1', 'old-1'], ['r-p2', 'old-2']] as const) {
      await node.storage.conn.client.insert({
        table: node.storage.conn.table('device_status'), format: 'JSONEachRow',
        values: [{ tenant_id: T, device_id: device, patient_id: p, ts: old, model: 'm', firmware: 'f', serial_number: 's', battery: 50, last_sync: null, diagnostics: [], seq: 1, purpose: 'service_operation', legal_basis: 'legitimate_interest', consent_version: 0, ingested_at: old }],
      })
    }
    await node.storage.conn.client.command({ query: `OPTIMIZE TABLE ${node.storage.conn.table('device_status')} FINAL` })
    expect((await rowsOf<{ device_id: string }>(node, "SELECT device_id FROM {db}.device_status WHERE device_id LIKE 'old-%'")).map((r) => r.device_id)).toEqual(['old-1'])
  })

  it('a legal hold blocks erasure until it is lifted', async () => {
    expect(node.rights.isHeld(T, 'r-p1')).toBe(true)
    await expect(node.rights.erase(T, 'r-p1', admin)).rejects.toMatchObject({ code: 'ING_ERR_HELD' })
    expect(await count(node, 'vital_samples', "patient_id = 'r-p1'")).toBeGreaterThan(0)
    await node.rights.setHold(T, 'r-p1', false, admin, 'case closed')
    const ddl = (await rowsOf<{ statement: string }>(node, 'SHOW CREATE TABLE {db}.device_status'))[0]!.statement
    expect(ddl).not.toContain('r-p1')
  })
})

describe('erasure', () => {
  it('removes the patient from every table ClickHouse lists and from the write-ahead log, before and after the forced merge; the receipt counts what was there', async () => {
    const other = await tablesHolding('r-p2')
    const there = await tablesHolding('r-p1')
    expect(Object.keys(there)).toEqual(expect.arrayContaining(['vital_samples', 'spot_measurements', 'alarm_events', 'consent_events', 'access_log', 'legal_holds', 'rectifications', 'patients', 'devices', 'device_bindings']))
    const exact = async (t: string) => count(node, t, "tenant_id = {t:String} AND patient_id = 'r-p1'", { t: T })
    const expected = { vital_samples: await exact('vital_samples'), spot_measurements: await exact('spot_measurements'), alarm_events: await exact('alarm_events'), consent_events: await exact('consent_events') }

    // hide first (lightweight delete), purge later, to look at both states
    const receipt = await node.rights.erase(T, 'r-p1', { user: 'r-boss', role: 'tenant_admin' }, undefined, { purge: false }) as any
    expect(await tablesHolding('r-p1')).toEqual({})
    // still on disk until the merge: with the delete mask off, ClickHouse shows the masked rows
    expect(Object.keys(await tablesHolding('r-p1', 'SETTINGS apply_deleted_mask = 0'))).toEqual(expect.arrayContaining(['vital_samples', 'spot_measurements', 'alarm_events']))
    expect(await node.rights.purgePending()).toBe(1)
    const [stored] = await rowsOf<{ purged: number | null; counts: Record<string, number> }>(node,
      `SELECT toUnixTimestamp64Milli(purged_at) AS purged, row_counts AS counts FROM {db}.erasure_receipts FINAL WHERE receipt_id = {id:String}`, { id: receipt.receiptId })
    expect(stored!.purged).not.toBeNull()
    expect(Object.fromEntries(Object.entries(stored!.counts).map(([k, v]) => [k, Number(v)]))).toEqual(receipt.rowCounts)
    expect(receipt.rowCounts).toMatchObject({ vital_samples: expected.vital_samples, spot_measurements: expected.spot_measurements, alarm_events: expected.alarm_events, 'consent_events (pseudonymised)': expected.consent_events })
    expect(JSON.stringify(receipt)).not.toContain('r-p1')

    expect(await tablesHolding('r-p1')).toEqual({})
    // physically gone: rows a lightweight delete only masks would show with the mask off
    expect(await tablesHolding('r-p1', 'SETTINGS apply_deleted_mask = 0')).toEqual({})
    for (const f of readdirSync(join(dir.path, 'wal'))) expect(readFileSync(join(dir.path, 'wal', f)).includes('r-p1')).toBe(false)
    expect(readdirSync(join(dir.path, 'spool'))).toEqual([])
    // the other patient is untouched
    expect(await tablesHolding('r-p2')).toEqual(expect.objectContaining(Object.fromEntries(Object.entries(other).filter(([t]) => t !== 'access_log'))))
    // the receipt proves which patient to whoever knows the id
    const { createHash } = await import('node:crypto')
    expect(createHash('sha256').update(`${receipt.salt}\0${T}\0r-p1`).digest('hex')).toBe(receipt.subjectHash)
    // the erased patient's devices keep sending: stored under no patient, the id does not come back
    await publish('r-brc1', 'vitals', 2, Date.now() - 5 * MIN)
    expect(await tablesHolding('r-p1')).toEqual({})
    expect(await count(node, 'vital_samples', "device_id = 'r-brc1' AND patient_id = ''")).toBeGreaterThan(0)
    expect((await call('GET', '/api/patients/r-p1/latest', await login('r-doc'))).status).toBe(404)
  })

  it('a withdrawal with erase removes exactly that category and stops it at once', async () => {
    const boss = await login('r-boss')
    const sleepBefore = await count(node, 'vital_samples', "patient_id = 'r-p2' AND category = 'sleep'")
    const vitalsBefore = await count(node, 'vital_samples', "patient_id = 'r-p2' AND category = 'vitals'")
    expect(sleepBefore).toBeGreaterThan(0)
    const r = await call('POST', '/api/patients/r-p2/consent', boss, { category: 'sleep', action: 'withdraw', erase: true })
    expect(r.status).toBe(201)
    expect(r.json.erasure.rowCounts).toEqual({ 'vital_samples:sleep': sleepBefore })
    expect(await count(node, 'vital_samples', "patient_id = 'r-p2' AND category = 'sleep'")).toBe(0)
    expect(await count(node, 'vital_samples', "patient_id = 'r-p2' AND category = 'vitals'")).toBe(vitalsBefore)
    await publish('r-brc2', 'vitals', 2, Date.now() - 3 * MIN)
    expect(await count(node, 'vital_samples', "patient_id = 'r-p2' AND category = 'sleep'")).toBe(0)
    expect(await count(node, 'vital_samples', "patient_id = 'r-p2' AND category = 'vitals'")).toBeGreaterThan(vitalsBefore)
  })
})

describe('minimum age', () => {
  it('refuses consent-based data of a patient under the tenant\'s minimum age until a guardian grants it', async () => {
    const birth = new Date(Date.now() - 10 * 365.25 * 86_400_000).toISOString().slice(0, 10)
    await node.registry.createPatient(T, 'r-kid', birth)
    devices['r-brc3'] = await node.registry.enrollDevice({ tenant: T, device: 'r-brc3', family: 'bracelet', patient: 'r-kid' })
    await node.registry.recordConsent({ tenant: T, patient: 'r-kid', purpose: 'care', category: 'vitals', action: 'grant', recordedBy: 'kid', source: 'app' })
    await publish('r-brc3', 'vitals', 2, Date.now() - 10 * MIN)
    expect(await count(node, 'vital_samples', "patient_id = 'r-kid' AND category = 'vitals'")).toBe(0)
    expect(await count(node, 'vital_samples', "patient_id = 'r-kid' AND category = 'device_diagnostics'")).toBe(2) // legitimate interest needs no consent
    await node.registry.recordConsent({ tenant: T, patient: 'r-kid', purpose: 'care', category: 'vitals', action: 'withdraw', recordedBy: 'kid', source: 'app' })
    await node.registry.recordConsent({ tenant: T, patient: 'r-kid', purpose: 'care', category: 'vitals', action: 'grant', recordedBy: 'parent', source: 'guardian', validFromMs: Date.now() - 3_600_000 })
    await publish('r-brc3', 'vitals', 2, Date.now() - 5 * MIN)
    expect(await count(node, 'vital_samples', "patient_id = 'r-kid' AND category = 'vitals'")).toBeGreaterThan(0)
    // a tenant that sets its minimum age to 8 treats the same patient as old enough
    await node.registry.createTenant(T, 'Rights test care', 8)
    expect(node.registry.hasPatient(T, 'r-kid')).toBe(true)
  })
})
