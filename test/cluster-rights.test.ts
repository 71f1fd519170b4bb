/**
 * Rights that rewrite data on a ClickHouse cluster (VF_CLICKHOUSE_CLUSTER): erasure, a withdrawal
 * with erase, rectification, a tenant's retention, a legal hold, the retired views. No ClickHouse
 * cluster runs here, so, as test/cluster-ddl.test.ts does for the schema, every statement the node
 * sends in cluster mode is captured (on the client the rights use) and parsed by ClickHouse itself
 * (formatQuery in chDB), and its structure is read from ClickHouse's formatting: every rewrite goes to
 * a local table ON CLUSTER and waits for every replica, every mutation is deterministic (no subquery:
 * a Replicated table's replicas each run it on their own), no statement names the patient, counts go
 * through the Distributed tables.
 *
 * The same statements then run on a real store: the client the rights see is a one-shard,
 * one-replica cluster seen from the node (each statement, with ON CLUSTER dropped, the `_local` name
 * mapped to the table and clusterAllReplicas(...) to the system table, runs on the node's own chDB,
 * whose tables stand for both the Distributed and the local ones). So the cluster path's predicates,
 * copies, counts and purge are checked against real rows, not only parsed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAlarmModel, createBraceletModel, createSpotModel, DeviceSealer } from '../devices/index.ts'
import { ConsentIndex, POLICY } from '../src/consent/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { Rights, type Actor, type ErasureReceipt } from '../src/rights/index.ts'
import { RETIRED_VIEWS, retireSequenceViews, type Storage, type StorageConnection } from '../src/storage/index.ts'
import { connectTls, count, rowsOf, startTestNode, tempDir } from './support/node.ts'

const T = 'care-cl'
const CLUSTER = 'vitalflow'
// long and distinctive: a short id could turn up by chance
const SUBJECT = 'pt-cluster-erased-h4w8n2'
const WITHDRAWN = 'pt-cluster-withdrawn-k3j5'
const SINGLE = 'pt-one-server-r6t1'
const MIN = 60_000
const t0 = Date.now() - 3 * 3_600_000
const actor: Actor = { user: 'cl-admin', role: 'tenant_admin' }

interface Sent { kind: 'query' | 'command' | 'insert'; query: string; params: Record<string, unknown>; settings: Record<string, unknown>; table?: string }

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const devices: Record<string, Enrollment> = {}

/**
 * The node's requests connection as a cluster `vitalflow` of one shard and one replica: what is
 * sent is recorded as sent, and runs on the node's chDB translated (see the header).
 */
function asCluster (real: StorageConnection): { conn: StorageConnection; sent: Sent[] } {
  const sent: Sent[] = []
  const translate = (q: string): string => q.replaceAll(` ON CLUSTER ${CLUSTER}`, '')
    .replace(/\b(\w+)\.(\w+)_local\b/g, '$1.$2')
    .replace(new RegExp(`clusterAllReplicas\\('${CLUSTER}', (system\\.\\w+)\\)`, 'g'), '$1')
  const client = real.client
  const fake = {
    query: async (p: Parameters<typeof client.query>[0]) => {
      sent.push({ kind: 'query', query: p.query, params: p.query_params ?? {}, settings: p.clickhouse_settings ?? {} })
      return await client.query({ ...p, query: translate(p.query) })
    },
    command: async (p: Parameters<typeof client.command>[0]) => {
      sent.push({ kind: 'command', query: p.query, params: p.query_params ?? {}, settings: p.clickhouse_settings ?? {} })
      // a plain MergeTree table has no replicas to wait for
      if (/^SYSTEM SYNC REPLICA /.test(p.query)) return { query_id: '', response_headers: {} }
      return await client.command({ ...p, query: translate(p.query) })
    },
    insert: async (p: Parameters<typeof client.insert>[0]) => {
      sent.push({ kind: 'insert', query: '', params: {}, settings: p.clickhouse_settings ?? {}, table: p.table })
      return await client.insert({ ...p, table: translate(p.table) })
    },
  }
  const conn = { ...real, mode: 'server', cluster: CLUSTER, client: fake as unknown as StorageConnection['client'] } as StorageConnection
  conn.requests = conn
  return { conn, sent }
}

/** Records what the single-server connection sends, without changing it. */
function recorded (real: StorageConnection): { conn: StorageConnection; sent: Sent[] } {
  const sent: Sent[] = []
  const client = real.client
  const fake = {
    query: async (p: Parameters<typeof client.query>[0]) => { sent.push({ kind: 'query', query: p.query, params: p.query_params ?? {}, settings: p.clickhouse_settings ?? {} }); return await client.query(p) },
    command: async (p: Parameters<typeof client.command>[0]) => { sent.push({ kind: 'command', query: p.query, params: p.query_params ?? {}, settings: p.clickhouse_settings ?? {} }); return await client.command(p) },
    insert: async (p: Parameters<typeof client.insert>[0]) => { sent.push({ kind: 'insert', query: '', params: {}, settings: {}, table: p.table }); return await client.insert(p) },
  }
  const conn: StorageConnection = { ...real, client: fake as unknown as StorageConnection['client'] }
  conn.requests = conn
  return { conn, sent }
}

async function formatted (statement: string): Promise<string> {
  const rs = await node.storage.conn.client.query({ query: 'SELECT formatQuery({q:String}) AS f', query_params: { q: statement }, format: 'JSONEachRow' })
  return (await rs.json<{ f: string }>())[0]!.f
}

async function publish (device: string, stream: 'vitals' | 'spot' | 'alarm', n: number): Promise<void> {
  const e = devices[device]!
  const c = await connectTls(node, device, e.secret)
  const s = new DeviceSealer({ tenant: T, device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
  const bracelet = createBraceletModel(device.length)
  const spot = createSpotModel(device.length)
  const alarm = createAlarmModel(device.length, { pressProbability: 1 })
  await Promise.all(Array.from({ length: n }, (_, i) => {
    const t = t0 + i * MIN
    const f = stream === 'vitals' ? s.seal('vitals', bracelet.nextBatch(t)) : stream === 'spot' ? s.seal('spot', spot.next(t)) : s.seal('alarm', { ...alarm.next(t), location: { latitude: 52.1, longitude: 5.1, accuracyM: 10 } })
    return c.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1 })
  }))
  await c.endAsync()
}

/** Each patient table's rows of a patient, through the node's own connection. */
async function rowsPerTable (tables: readonly string[], patient: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const t of tables) out[t] = await count(node, t, 'tenant_id = {t:String} AND patient_id = {p:String}', { t: T, p: patient })
  return out
}

const rewrites = (sent: Sent[]): Sent[] => sent.filter((s) => /^\s*(ALTER|DELETE|SYSTEM|DROP)\b/.test(s.query))
const mutations = (sent: Sent[]): Sent[] => sent.filter((s) => /^\s*DELETE FROM\b/.test(s.query) || /^\s*ALTER TABLE [\s\S]* (UPDATE|DELETE) /.test(s.query))

let cluster: { conn: StorageConnection; sent: Sent[] }
let rights: Rights
let receipt: ErasureReceipt
let tables: string[]
let before: Record<string, number>
let erasureSent: Sent[]

beforeAll(async () => {
  dir = tempDir('vf-cluster-rights-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant(T, 'Cluster rights care')
  for (const p of [SUBJECT, WITHDRAWN, SINGLE]) {
    await node.registry.createPatient(T, p)
    for (const category of ['vitals', 'sleep', 'activity', 'spot_measurements', 'location'] as const) {
      await node.registry.recordConsent({ tenant: T, patient: p, purpose: 'care', category, action: 'grant', recordedBy: 'nurse', source: 'app', validFromMs: 0 })
    }
  }
  const enrol: Array<[string, 'bracelet' | 'cvitals' | 'calarm', string]> = [
    ['cl-brc1', 'bracelet', SUBJECT], ['cl-cvk1', 'cvitals', SUBJECT], ['cl-cal1', 'calarm', SUBJECT],
    ['cl-cvk2', 'cvitals', WITHDRAWN], ['cl-cal2', 'calarm', WITHDRAWN], ['cl-cal3', 'calarm', SINGLE],
  ]
  for (const [d, family, patient] of enrol) devices[d] = await node.registry.enrollDevice({ tenant: T, device: d, family, patient })
  await publish('cl-brc1', 'vitals', 5)
  await publish('cl-cvk1', 'spot', 4)
  for (const d of ['cl-cal1', 'cl-cal2', 'cl-cal3']) await publish(d, 'alarm', 3)
  await publish('cl-cvk2', 'spot', 4)
  await node.storage.flush()

  cluster = asCluster(node.storage.conn.requests)
  const storage: Storage = { ...node.storage, conn: cluster.conn }
  rights = await Rights.load({ storage, registry: node.registry, consent: new ConsentIndex(POLICY), policy: POLICY, erasure: { purgeTimeoutMs: 60_000, pollMs: 50 } })
  tables = await node.rights.patientTables()
  // the access log and the flags: rows the erasure keeps, pseudonymised
  await rights.audit(T, actor, SUBJECT, 'read', 'latest')
  await rights.setHold(T, SUBJECT, true, actor, 'case 9')
  await rights.setHold(T, SUBJECT, false, actor, 'case 9 closed')
  before = await rowsPerTable(tables, SUBJECT)
  const from = cluster.sent.length
  receipt = await rights.erase(T, SUBJECT, actor)
  erasureSent = cluster.sent.slice(from)
}, 180_000)

afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('a whole-patient erasure on a cluster', () => {
  it('every statement is valid ClickHouse; every rewrite goes to a local table ON CLUSTER and waits for every replica', async () => {
    const out = rewrites(erasureSent)
    expect(out.length).toBeGreaterThan(tables.length)
    for (const s of erasureSent.filter((x) => x.kind !== 'insert')) await formatted(s.query)
    for (const s of out) {
      const f = (await formatted(s.query)).split('\n')[0]!
      expect(f, s.query).toMatch(new RegExp(`^(ALTER TABLE \\w+\\.\\w+_local ON CLUSTER ${CLUSTER}|DELETE FROM \\w+\\.\\w+_local ON CLUSTER ${CLUSTER} WHERE|SYSTEM SYNC REPLICA ON CLUSTER ${CLUSTER} \\w+\\.\\w+_local LIGHTWEIGHT$)`))
      expect(Number(s.settings['distributed_ddl_task_timeout']), s.query).toBeGreaterThan(0)
    }
    for (const s of mutations(erasureSent)) {
      expect(s.query.startsWith('DELETE') ? s.settings['lightweight_deletes_sync'] : s.settings['mutations_sync'], s.query).toBe('2')
    }
    for (const s of out.filter((x) => / APPLY DELETED MASK/.test(x.query))) expect(s.settings['mutations_sync']).toBe('2')
    // every patient table was rewritten on its local table: deleted, pseudonymised or unbound, then purged
    const purged = out.filter((s) => / APPLY DELETED MASK/.test(s.query)).map((s) => /\.(\w+)_local /.exec(s.query)?.[1])
    expect(purged.sort()).toEqual([...tables].sort())
  })

  it('no mutation has a subquery (each replica runs it on its own), and no statement names the patient or a subject set', async () => {
    const muts = mutations(erasureSent)
    expect(muts.length).toBeGreaterThanOrEqual(tables.filter((t) => before[t]! > 0).length)
    for (const s of muts) expect(await formatted(s.query), s.query).not.toMatch(/\bSELECT\b/)
    for (const s of erasureSent) {
      expect(s.query, s.query).not.toContain(SUBJECT)
      expect(JSON.stringify(s.params), s.query).not.toContain(SUBJECT)
      expect(s.query).not.toMatch(/erasure_set/)
      if (s.table !== undefined) expect(s.table).not.toMatch(/erasure_set/)
    }
    // the predicate holds what the receipt publishes: its salt and subject hash
    expect(muts.every((s) => s.params['salt'] === receipt.salt && s.params['hash'] === receipt.subjectHash)).toBe(true)
  })

  it('counts and copies go through the Distributed tables, the purge reads every replica', () => {
    for (const s of erasureSent.filter((x) => x.kind === 'query' || /^\s*INSERT/.test(x.query))) {
      expect(s.query, s.query).not.toMatch(/\b\w+\.\w+_local\b/)
      const system = [...s.query.matchAll(/\bsystem\.(parts|mutations)\b/g)]
      for (const m of system) expect(s.query.slice(0, m.index), s.query).toMatch(new RegExp(`clusterAllReplicas\\('${CLUSTER}', $`))
    }
    for (const s of erasureSent.filter((x) => x.kind === 'insert')) expect(s.table).not.toMatch(/_local$/)
  })

  it('run on a store, the statements remove exactly the subject\'s rows, keep the logs under the hash, and the receipt counts them', async () => {
    expect(Object.values(before).reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
    for (const [table, n] of Object.entries(before)) {
      if (n === 0 || table === 'devices') continue
      const key = ['consent_events', 'legal_holds', 'restrictions', 'access_log'].includes(table) ? `${table} (pseudonymised)` : table === 'device_bindings' ? `${table} (unbound)` : table
      expect(receipt.rowCounts[key], table).toBe(n)
    }
    expect(receipt.rowCounts['devices (unbound)']).toBe(3)
    expect(Object.values(await rowsPerTable(tables, SUBJECT)).every((n) => n === 0)).toBe(true)
    for (const table of ['consent_events', 'legal_holds', 'access_log']) {
      expect(await count(node, table, 'tenant_id = {t:String} AND patient_id = {h:String}', { t: T, h: receipt.subjectHash }), table).toBeGreaterThanOrEqual(before[table]!)
    }
    // the others are untouched
    expect((await rowsPerTable(['alarm_events', 'spot_measurements'], WITHDRAWN))['spot_measurements']).toBeGreaterThan(0)
    expect(receipt.purgedAtMs).not.toBeNull()
    const left = await rowsOf<{ n: string }>(node, 'SELECT count() AS n FROM system.mutations WHERE database = {db:String} AND position(command, {p:String}) > 0', { db: node.storage.conn.database, p: SUBJECT })
    expect(Number(left[0]!.n)).toBe(0)
  })
})

describe('the other rights that rewrite, on a cluster', () => {
  it('a withdrawal with erase clears an alarm\'s location on the local table ON CLUSTER, by hash', async () => {
    const from = cluster.sent.length
    const r = await rights.erase(T, WITHDRAWN, actor, ['location'])
    const sent = cluster.sent.slice(from)
    expect(r.rowCounts['alarm_events:location']).toBe(3)
    const [update] = mutations(sent)
    expect(await formatted(update!.query)).toMatch(new RegExp(`^ALTER TABLE \\w+\\.alarm_events_local ON CLUSTER ${CLUSTER}\\n\\s+\\(UPDATE latitude = NULL`))
    expect(await formatted(update!.query)).not.toMatch(/\bSELECT\b/)
    for (const s of sent) expect(s.query + JSON.stringify(s.params)).not.toContain(WITHDRAWN)
    expect(await count(node, 'alarm_events', 'patient_id = {p:String} AND latitude IS NOT NULL', { p: WITHDRAWN })).toBe(0)
    expect(await count(node, 'alarm_events', 'patient_id = {p:String}', { p: WITHDRAWN })).toBe(3)
  })

  it('a rectification updates the local table ON CLUSTER by device and sequence number, without the patient id', async () => {
    const [v] = await rowsOf<{ device_id: string; seq: string; systolic: number }>(node,
      'SELECT device_id, toString(seq) AS seq, systolic FROM {db}.spot_measurements WHERE patient_id = {p:String} AND systolic IS NOT NULL ORDER BY seq LIMIT 1', { p: WITHDRAWN })
    const from = cluster.sent.length
    const out = await rights.rectify(T, WITHDRAWN, { target: 'spot_measurements.systolic', device: v!.device_id, seq: Number(v!.seq), corrected: 121, reason: 'cuff' }, actor)
    const [update, ...more] = mutations(cluster.sent.slice(from))
    expect(more).toEqual([])
    expect(out).toEqual({ original: Number(v!.systolic), corrected: 121 })
    const f = await formatted(update!.query)
    expect(f).toMatch(new RegExp(`^ALTER TABLE \\w+\\.spot_measurements_local ON CLUSTER ${CLUSTER}\\n\\s+\\(UPDATE systolic = \\{corrected:Float64\\} WHERE `))
    expect(f).not.toMatch(/patient_id/)
    expect(JSON.stringify(update!.params)).not.toContain(WITHDRAWN)
    expect(update!.settings['mutations_sync']).toBe('2')
    expect(await count(node, 'spot_measurements', 'device_id = {d:String} AND seq = {s:UInt64} AND systolic = 121', { d: v!.device_id, s: v!.seq })).toBe(1)
  })

  it('a tenant\'s retention and a legal hold write the TTL of the local tables ON CLUSTER, waited for on every replica', async () => {
    const from = cluster.sent.length
    await rights.setRetention(T, 'vitals', POLICY.retention.vitals.maxDays, actor)
    await rights.setHold(T, WITHDRAWN, true, actor, 'case 10')
    const ttl = cluster.sent.slice(from).filter((s) => / MODIFY TTL /.test(s.query))
    expect(ttl.length).toBeGreaterThan(1)
    for (const s of ttl) {
      expect((await formatted(s.query)).split('\n')[0]).toMatch(new RegExp(`^ALTER TABLE \\w+\\.\\w+_local ON CLUSTER ${CLUSTER}$`))
      expect(s.settings['alter_sync']).toBe('2')
    }
    await rights.setHold(T, WITHDRAWN, false, actor, 'case 10 closed')
  })

  it('a hold set through another node on the same cluster stops an erasure here, and its TTL is kept when this node writes TTLs', async () => {
    // two nodes' rights on one shared store: each loaded its holds at its start
    const other = await Rights.load({ storage: { ...node.storage, conn: cluster.conn }, registry: node.registry, consent: new ConsentIndex(POLICY), policy: POLICY })
    await other.setHold(T, SINGLE, true, actor, 'case 11')
    try {
      await expect(rights.erase(T, SINGLE, actor, ['location'])).rejects.toMatchObject({ code: 'ING_ERR_HELD' })
      // a choice of this tenant's made here rewrites vital_samples' TTL: with the other node's hold in it
      const rule = POLICY.retention.sleep
      const days = rule.defaultDays < rule.maxDays ? rule.defaultDays + 1 : rule.defaultDays - 1
      const from = cluster.sent.length
      await rights.setRetention(T, 'sleep', days, actor)
      const ttl = cluster.sent.slice(from).filter((s) => / MODIFY TTL /.test(s.query))
      expect(ttl.map((s) => /\.(\w+)_local /.exec(s.query)?.[1])).toEqual(['vital_samples'])
      expect(ttl[0]!.query).toContain(`toIntervalDay(${days})`)
      expect(ttl[0]!.query).toContain(`'${SINGLE}'`)
    } finally {
      await other.setHold(T, SINGLE, false, actor, 'case 11 closed')
    }
  })

  it('the retired sequence views are dropped ON CLUSTER', async () => {
    const from = cluster.sent.length
    await retireSequenceViews(cluster.conn)
    const drops = cluster.sent.slice(from)
    expect(drops.map((s) => s.query)).toEqual(RETIRED_VIEWS.map((v) => `DROP VIEW IF EXISTS ${node.storage.conn.database}.${v} ON CLUSTER ${CLUSTER} SYNC`))
    for (const s of drops) await formatted(s.query)
  })
})

describe('one server: unchanged', () => {
  it('the subject set comes first, statements select from it, and nothing runs ON CLUSTER or on a local table', async () => {
    const one = recorded(node.storage.conn.requests)
    const single = await Rights.load({ storage: { ...node.storage, conn: one.conn }, registry: node.registry, consent: new ConsentIndex(POLICY), policy: POLICY })
    const from = one.sent.length
    const r = await single.erase(T, SINGLE, actor, ['location'])
    const sent = one.sent.slice(from)
    expect(r.rowCounts['alarm_events:location']).toBe(3)
    expect(sent[0]).toMatchObject({ kind: 'insert', table: `${node.storage.conn.database}.erasure_set` })
    const [update] = mutations(sent)
    expect(update!.query).toMatch(/^ALTER TABLE \w+\.alarm_events UPDATE [\s\S]* IN \(SELECT e\.patient_id FROM \w+\.erasure_set AS e WHERE e\.erasure_id = \{eid:String\}\)/)
    for (const s of sent) {
      expect(s.query).not.toMatch(/ON CLUSTER|_local\b|SYNC REPLICA/)
      expect(s.query + JSON.stringify(s.params)).not.toContain(SINGLE)
    }
    // and is emptied last (the audit entry after it is an insert)
    expect(sent.filter((s) => s.kind === 'command').at(-1)!.query).toMatch(/^ALTER TABLE \w+\.erasure_set DELETE WHERE erasure_id = \{eid:String\}$/)
  })
})
