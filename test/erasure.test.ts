/**
 * Erasure that leaves nothing behind (issue 14), on a real node (aedes over
 * TLS, real chDB): the pseudonymised copies of the logs we keep are read back,
 * a read of the erased id does not bring the id back through the access log,
 * the receipt counts the devices it unbound, and, with the node stopped, no
 * file under the data directory holds the id: not as raw bytes, not inside a
 * compressed part, not in ClickHouse's mutation records, not in an old part.
 */
import { createHash } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, createBraceletModel, createSpotModel, DeviceSealer } from '../devices/index.ts'
import { connectTls, count, rowsOf, startTestNode, tempDir } from './support/node.ts'
import { readStore, scanDataDir } from './support/store-scan.ts'

const T = 'care-e'
// long and distinctive: a short id could turn up by chance in keys or compressed bytes
const SUBJECT = 'pt-erasure-subject-q7k2m9'
const OTHER = 'pt-kept-x3v8w1'
const NEVER = 'pt-never-existed-z9'
const PASSWORD = 'correct horse battery staple'
const MIN = 60_000
const t0 = Date.now() - 3 * 3_600_000
/** Tables whose rows about the subject are kept under the receipt's hash. */
const KEPT = ['consent_events', 'legal_holds', 'restrictions', 'access_log'] as const

let dir: ReturnType<typeof tempDir>
let node: IngestNode | undefined
const devices: Record<string, Enrollment> = {}
const sealers: Record<string, DeviceSealer> = {}
const base = () => `http://127.0.0.1:${node!.http.port}`
let receipt: { receiptId: string; subjectHash: string; salt: string; rowCounts: Record<string, number>; purgedAtMs: number | null }
/** Every statement the node sent to ClickHouse while it erased, with its parameters. */
const sent: Array<{ kind: string; query: string; params: Record<string, unknown>; table?: string }> = []
/** The kept tables' rows about the subject just before the erasure, without patient_id. */
const before: Record<string, string[]> = {}

async function call (method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(base() + path, {
    method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body),
  })
  const text = await r.text()
  let json: unknown = null
  try { json = JSON.parse(text) } catch { /* not JSON */ }
  return { status: r.status, json }
}
async function login (user: string): Promise<string> {
  const r = await fetch(`${base()}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: T, user, password: PASSWORD }) })
  return ((await r.json()) as { token: string }).token
}

async function publish (device: string, stream: 'vitals' | 'spot' | 'alarm', n: number, from = t0): Promise<void> {
  const e = devices[device]!
  const c = await connectTls(node!, device, e.secret)
  const s = sealers[device] ??= new DeviceSealer({ tenant: T, device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
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

/** A kept table's rows of one patient id, every column but patient_id, as sorted JSON lines. */
async function keptRows (table: string, patient: string, extra = '1'): Promise<string[]> {
  const rows = await rowsOf(node!, `SELECT * EXCEPT (patient_id) FROM {db}.${table} WHERE tenant_id = {t:String} AND patient_id = {p:String} AND ${extra}`, { t: T, p: patient })
  return rows.map((r) => JSON.stringify(r)).sort()
}

beforeAll(async () => {
  dir = tempDir('vf-erasure-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant(T, 'Erasure test care')
  for (const p of [SUBJECT, OTHER]) {
    await node.registry.createPatient(T, p)
    for (const category of ['vitals', 'sleep', 'activity', 'spot_measurements', 'location'] as const) {
      await node.registry.recordConsent({ tenant: T, patient: p, purpose: 'care', category, action: 'grant', recordedBy: 'nurse', source: 'app', validFromMs: 0 })
    }
  }
  const api = createAdminClient(base(), node.adminToken)
  for (const [user, role] of [['e-doc', 'clinician'], ['e-boss', 'tenant_admin']] as const) await api.request('POST', '/admin/users', { tenant: T, user, role, password: PASSWORD })
  for (const [d, family, patient] of [['e-brc1', 'bracelet', SUBJECT], ['e-cvk1', 'cvitals', SUBJECT], ['e-cal1', 'calarm', SUBJECT], ['e-brc2', 'bracelet', OTHER]] as const) {
    devices[d] = await node.registry.enrollDevice({ tenant: T, device: d, family, patient })
  }
  await publish('e-brc1', 'vitals', 20)
  await publish('e-cvk1', 'spot', 5)
  await publish('e-cal1', 'alarm', 3)
  await publish('e-brc2', 'vitals', 20)
  await node.storage.flush()

  // everything that writes the subject's id somewhere: reads (access log), hold and restriction
  // history, a rectification and a withdrawal with erase (ALTER ... UPDATE / DELETE mutations naming the id)
  const doc = await login('e-doc')
  const boss = await login('e-boss')
  for (const path of ['latest', 'series?metric=heart_rate', 'spot', 'alarms']) expect((await call('GET', `/api/patients/${SUBJECT}/${path}`, doc)).status).toBe(200)
  expect((await call('POST', `/api/patients/${SUBJECT}/hold`, boss, { hold: true, reason: 'case 7' })).status).toBe(200)
  expect((await call('POST', `/api/patients/${SUBJECT}/hold`, boss, { hold: false, reason: 'case 7 closed' })).status).toBe(200)
  expect((await call('POST', `/api/patients/${SUBJECT}/restriction`, boss, { restrict: true, reason: 'dispute' })).status).toBe(200)
  expect((await call('POST', `/api/patients/${SUBJECT}/restriction`, boss, { restrict: false, reason: 'resolved' })).status).toBe(200)
  const [spot] = await rowsOf<{ device_id: string; seq: string }>(node, `SELECT device_id, toString(seq) AS seq FROM {db}.spot_measurements WHERE patient_id = {p:String} AND systolic IS NOT NULL LIMIT 1`, { p: SUBJECT })
  expect((await call('POST', `/api/patients/${SUBJECT}/rectifications`, doc, { target: 'spot_measurements.systolic', device: spot!.device_id, seq: Number(spot!.seq), corrected: 120, reason: 'cuff' })).status).toBe(200)
  expect((await call('POST', `/api/patients/${SUBJECT}/consent`, boss, { category: 'location', action: 'withdraw', erase: true })).status).toBe(201)
  expect((await call('GET', `/api/patients/${SUBJECT}/access-report`, boss)).status).toBe(200)

  for (const table of KEPT) before[table] = await keptRows(table, SUBJECT)
  // every statement on either connection (the ingest path's and the one requests run on)
  const restore: Array<() => void> = []
  for (const client of new Set([node.storage.conn.client, node.storage.conn.requests.client])) {
    const { command, query, insert } = { command: client.command.bind(client), query: client.query.bind(client), insert: client.insert.bind(client) }
    client.command = async (p) => { sent.push({ kind: 'command', query: p.query, params: p.query_params ?? {} }); return await command(p) }
    client.query = async (p: Parameters<typeof query>[0]) => { sent.push({ kind: 'query', query: p.query, params: p.query_params ?? {} }); return await query(p) }
    client.insert = async (p) => { sent.push({ kind: 'insert', query: '', params: {}, table: p.table }); return await insert(p) }
    restore.push(() => { Object.assign(client, { command, query, insert }) })
  }
  const r = await call('POST', `/api/patients/${SUBJECT}/erasure`, boss, {})
  for (const f of restore) f()
  expect(r.status).toBe(200)
  receipt = r.json
}, 180_000)

afterAll(async () => {
  await node?.close()
  dir?.remove()
  for (const s of ['-copy', '-copy2']) rmSync(`${dir?.path}${s}`, { recursive: true, force: true })
})

describe('erasure keeps the logs the law needs, pseudonymised', () => {
  it('every kept row is there under the receipt\'s hash, with the same content apart from the patient id', async () => {
    expect(createHash('sha256').update(`${receipt.salt}\0${T}\0${SUBJECT}`).digest('hex')).toBe(receipt.subjectHash)
    for (const table of KEPT) {
      expect(before[table]!.length, table).toBeGreaterThan(0)
      expect(receipt.rowCounts[`${table} (pseudonymised)`], table).toBe(before[table]!.length)
      // the erasure's own audit entry is written under the hash too; it is not a copy
      const copies = await keptRows(table, receipt.subjectHash, table === 'access_log' ? `detail != 'receipt ${receipt.receiptId}'` : '1')
      expect(copies, table).toEqual(before[table])
      expect(await keptRows(table, SUBJECT), table).toEqual([])
    }
    expect(await count(node!, 'access_log', 'tenant_id = {t:String} AND patient_id = {h:String} AND detail = {d:String}', { t: T, h: receipt.subjectHash, d: `receipt ${receipt.receiptId}` })).toBe(1)
  })

  it('the receipt counts every device it unbound', async () => {
    expect(receipt.rowCounts['devices (unbound)']).toBe(3)
    for (const d of ['e-brc1', 'e-cvk1', 'e-cal1']) expect(node!.registry.device(d)?.patient ?? null).toBeNull()
  })
})

describe('the erased id does not come back', () => {
  it('a read of the erased id answers 404 and the access log records it without the id', async () => {
    const doc = await login('e-doc')
    for (const path of ['latest', 'series?metric=heart_rate', 'spot', 'alarms']) expect((await call('GET', `/api/patients/${SUBJECT}/${path}`, doc)).status).toBe(404)
    expect((await call('GET', `/api/patients/${NEVER}/latest`, doc)).status).toBe(404)
    // a query parameter is no way in either
    expect((await call('GET', `/api/patients/${OTHER}/latest?note=${SUBJECT}`, doc)).status).toBe(200)
    const log = await rowsOf<{ patient_id: string; action: string; detail: string }>(node!,
      `SELECT patient_id, action, detail FROM {db}.access_log WHERE tenant_id = {t:String} AND user_id = 'e-doc' AND ts >= now64(3) - INTERVAL 1 MINUTE ORDER BY ts`, { t: T })
    const refused = log.filter((l) => l.patient_id === '')
    expect(refused.length).toBeGreaterThanOrEqual(5)
    expect(refused.every((l) => l.detail.includes('404'))).toBe(true)
    for (const needle of [SUBJECT, NEVER]) {
      expect(await count(node!, 'access_log', 'position(toString(tuple(*)), {n:String}) > 0', { n: needle })).toBe(0)
    }
  })
})

describe('server mode', () => {
  it('no statement of the erasure carries the id, in its text or its parameters, so no server keeps it in system.mutations or its query log', async () => {
    const statements = sent.filter((s) => s.kind !== 'insert')
    expect(statements.some((s) => /^\s*(DELETE FROM|ALTER TABLE .* (UPDATE|DELETE|APPLY DELETED MASK))/s.test(s.query))).toBe(true)
    for (const s of statements) {
      expect(s.query).not.toContain(SUBJECT)
      expect(JSON.stringify(s.params)).not.toContain(SUBJECT)
    }
    // the id goes in as data (a server takes it in the request body), into the Memory table only
    expect(sent.filter((s) => s.kind === 'insert').map((s) => s.table)).toContain(`${node!.storage.conn.database}.erasure_set`)
    // every mutation is valid server SQL too (chDB's parser is the server's)
    for (const s of statements.filter((x) => /^\s*(DELETE|ALTER|INSERT)/.test(x.query))) {
      const rs = await node!.storage.conn.client.query({ query: 'SELECT formatQuery({q:String}) AS f', query_params: { q: s.query }, format: 'JSONEachRow' })
      expect((await rs.json<{ f: string }>())[0]!.f.length).toBeGreaterThan(0)
    }
  })
})

describe('nothing of the erased id stays on disk', () => {
  it('no file under the data directory holds the id, raw or compressed; a fresh chDB session over the stopped store finds it nowhere', async () => {
    expect(receipt.purgedAtMs).not.toBeNull()
    // the other patient is there, so the scan can see what it looks for
    await node!.close()
    node = undefined
    const control = scanDataDir(dir.path, OTHER)
    expect(control.hits.length).toBeGreaterThan(0)
    expect(control.decodedBlocks).toBeGreaterThan(0)

    const scan = scanDataDir(dir.path, SUBJECT)
    expect(scan.files).toBeGreaterThan(100)
    expect(scan.hits).toEqual([])

    const store = readStore(join(dir.path, 'chdb'), `${dir.path}-copy`, SUBJECT)
    expect(store.tables).toBeGreaterThan(15)
    expect(store.holding).toEqual({})
    expect(store.mutations).toEqual([])
    expect(store.detached).toBe(0)
    const kept = readStore(join(dir.path, 'chdb'), `${dir.path}-copy2`, OTHER)
    expect(Object.keys(kept.holding).length).toBeGreaterThan(3)
  }, 120_000)
})
