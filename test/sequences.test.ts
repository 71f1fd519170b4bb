/**
 * GET /admin/tenants/:t/sequences, what the simulator polls to time "device →
 * queryable": per device of the tenant, the highest stored sequence number,
 * as device_heads holds it (a row per device and part, written once a message's
 * rows are stored). Embedded, the node answers from its own record of the heads
 * it inserted (src/storage/stored-heads.ts), seeded from the table at start.
 * Real node (aedes over TLS, chDB in a temp dir). Own file: one chDB data
 * directory per process.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient, STORED_SINCE_HEADER } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createAlarmModel, createBraceletModel, createSpotModel } from '../devices/index.ts'
import { count, enrollAndConnect, holdConnection, rowsOf, startTestNode, tempDir, windowSeen, type TestDevice } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const devices: Record<string, TestDevice> = {}
const sent: Record<string, number[]> = {}

async function publish (d: TestDevice, family: string, at: number): Promise<void> {
  const f = family === 'bracelet' ? d.sealer.seal('vitals', createBraceletModel(1).nextBatch(at))
    : family === 'cvitals' ? d.sealer.seal('spot', createSpotModel(1).next(at))
      : d.sealer.seal('alarm', createAlarmModel(1).next(at))
  await d.client.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1 })
  ;(sent[d.enrollment.device] ??= []).push(f.seq)
}

beforeAll(async () => {
  dir = tempDir('vf-seq-')
  node = await startTestNode(dir.path)
  for (const t of ['seq-a', 'seq-b']) {
    await node.registry.createTenant(t, t)
    await node.registry.createPatient(t, `${t}-p`)
    await node.registry.recordConsent({ tenant: t, patient: `${t}-p`, purpose: 'care', category: 'vitals', action: 'grant', recordedBy: 'x', source: 'app', validFromMs: 0 })
  }
  devices['a-brc'] = await enrollAndConnect(node, 'seq-a', 'a-brc', 'bracelet', 'seq-a-p')
  devices['a-cal'] = await enrollAndConnect(node, 'seq-a', 'a-cal', 'calarm', 'seq-a-p')
  devices['b-brc'] = await enrollAndConnect(node, 'seq-b', 'b-brc', 'bracelet', 'seq-b-p')
  // a cVitals kit of a patient without any consent: every measurement is filtered, no row is stored,
  // yet the sequence number is used up (logged alone, and in the replay-window file)
  await node.registry.createPatient('seq-a', 'seq-a-none')
  devices['a-none'] = await enrollAndConnect(node, 'seq-a', 'a-none', 'cvitals', 'seq-a-none')
}, 60_000)
afterAll(async () => {
  for (const d of Object.values(devices)) if (d.client.connected) await d.client.endAsync()
  await node?.close()
  dir?.remove()
})

describe('stored sequence numbers per device', () => {
  it('returns each device\'s highest stored sequence number, only the tenant\'s own, and merges down to one row per device', async () => {
    const t = Date.now() - 3_600_000
    for (let round = 0; round < 4; round++) {
      for (const d of Object.values(devices)) await publish(d, d.enrollment.family, t + round * 60_000)
      await node.storage.flush() // one insert, hence one part, per round
    }
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    const heads = async (tenant: string, since = 0): Promise<Record<string, number>> =>
      Object.fromEntries((await api.request<Array<{ device: string; seq: number }>>('GET', `/admin/tenants/${tenant}/sequences?since=${since}`)).map((r) => [r.device, r.seq]))
    const top = (d: string): number => Math.max(...sent[d]!)
    expect(await heads('seq-a')).toEqual({ 'a-brc': top('a-brc'), 'a-cal': top('a-cal'), 'a-none': top('a-none') })
    expect(await heads('seq-b')).toEqual({ 'b-brc': top('b-brc') })
    // `since` leaves out devices with nothing stored from there on
    expect(await heads('seq-a', top('a-brc') + 1)).toEqual(Object.fromEntries(['a-cal', 'a-none'].filter((d) => top(d) > top('a-brc')).map((d) => [d, top(d)])))
    expect(await count(node, 'spot_measurements', "device_id = 'a-none'")).toBe(0)
    // every message's number is in the replay-window file, none in device_sequences; the heads keep one row per device once merged
    for (const d of Object.keys(devices)) expect(await windowSeen(node, dir.path, d), d).toEqual(sent[d]!.map(BigInt))
    expect(await count(node, 'device_sequences')).toBe(0)
    await rowsOf(node, 'OPTIMIZE TABLE {db}.device_heads FINAL')
    expect(await count(node, 'device_heads')).toBe(4)
    expect(await heads('seq-a')).toEqual({ 'a-brc': top('a-brc'), 'a-cal': top('a-cal'), 'a-none': top('a-none') })
  })

  it('with storedSince answers only the heads stored since, and the cursor it hands out misses nothing', async () => {
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    const poll = async (tenant: string, storedSince?: string): Promise<{ heads: Record<string, number>; next: string | null }> => {
      const a = await api.getWithHeaders<Array<{ device: string; seq: number }>>(`/admin/tenants/${tenant}/sequences?since=0${storedSince === undefined ? '' : `&storedSince=${storedSince}`}`)
      return { heads: Object.fromEntries(a.body.map((r) => [r.device, r.seq])), next: a.headers.get(STORED_SINCE_HEADER) }
    }
    const top = (d: string): number => Math.max(...sent[d]!)
    // a head is queued once its message's rows are stored: the second flush ships it
    const stored = async (): Promise<void> => { await node.storage.flush(); await node.storage.flush() }
    const t = Date.now() - 1_800_000
    await stored()
    const first = await poll('seq-a')
    expect(first.heads).toEqual({ 'a-brc': top('a-brc'), 'a-cal': top('a-cal'), 'a-none': top('a-none') })
    expect(first.next).not.toBeNull()
    // a part with a-brc's new head, then one with a-cal's: asked from the cursor of the answer in between,
    // the node names those two and not a-none, whose head is older than both
    await publish(devices['a-brc']!, 'bracelet', t)
    await stored()
    const between = await poll('seq-a', first.next!)
    expect(between.heads['a-brc']).toBe(top('a-brc'))
    await publish(devices['a-cal']!, 'calarm', t)
    await stored()
    const after = await poll('seq-a', between.next!)
    expect(after.heads).toEqual({ 'a-brc': top('a-brc'), 'a-cal': top('a-cal') })
    // nothing new: the same cursor again
    expect((await poll('seq-a', after.next!)).next).toBe(after.next)

    // a poller following the cursor while devices publish and the node ships on its own (no flush) ends
    // with what a full read answers: no head stored while an answer was on its way is skipped
    const seen: Record<string, number> = {}
    let cursor = after.next!
    let publishing = true
    const follow = (async () => {
      while (publishing) {
        const a = await poll('seq-a', cursor)
        for (const [d, seq] of Object.entries(a.heads)) seen[d] = Math.max(seen[d] ?? 0, seq)
        cursor = a.next ?? cursor
      }
    })()
    for (let round = 0; round < 12; round++) {
      for (const d of ['a-brc', 'a-cal', 'a-none']) await publish(devices[d]!, devices[d]!.enrollment.family, t + 60_000 * (round + 1))
      await new Promise((resolve) => setTimeout(resolve, 40))
    }
    await stored()
    publishing = false
    await follow
    const last = await poll('seq-a', cursor)
    for (const [d, seq] of Object.entries(last.heads)) seen[d] = Math.max(seen[d] ?? 0, seq)
    expect(seen).toEqual((await poll('seq-a')).heads)
    expect(seen).toEqual({ 'a-brc': top('a-brc'), 'a-cal': top('a-cal'), 'a-none': top('a-none') })
  })

  it('are answered from what the node stored, with no statement: a poll answers while the requests connection is held', async () => {
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    await node.storage.flush()
    await node.storage.flush()
    const table = await rowsOf<{ device: string; seq: string }>(node, "SELECT device_id AS device, toString(max(seq)) AS seq FROM {db}.device_heads WHERE tenant_id = 'seq-a' GROUP BY device_id")
    // the API's reads run on the requests connection, and embedded chDB runs one statement at a time per
    // connection: a read of device_heads would wait for this one
    const held = await holdConnection(node.storage.conn.requests.client)
    try {
      const answer = await Promise.race([
        api.request<Array<{ device: string; seq: number }>>('GET', '/admin/tenants/seq-a/sequences?since=0'),
        held.busy.then(() => 'the held statement ended first' as const),
      ])
      expect(held.done()).toBe(false)
      expect(answer).not.toBe('the held statement ended first')
      expect(Object.fromEntries((answer as Array<{ device: string; seq: number }>).map((h) => [h.device, String(h.seq)])))
        .toEqual(Object.fromEntries(table.map((h) => [h.device, h.seq])))
    } finally {
      held.release()
      await held.busy
    }
  })

  it('a node started on a store from before the heads existed fills them from the sequence log', async () => {
    const before = await rowsOf<{ device_id: string; seq: string }>(node, 'SELECT device_id, toString(max(seq)) AS seq FROM {db}.device_heads GROUP BY device_id ORDER BY device_id')
    // undo migrations 10, 14 and 16 as an older version would have left the store, then start again
    for (const t of ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status']) await rowsOf(node, `DROP VIEW IF EXISTS {db}.${t}_heads`)
    await rowsOf(node, 'DROP TABLE {db}.device_heads')
    await rowsOf(node, 'ALTER TABLE {db}.schema_migrations DELETE WHERE version IN (10, 14, 16) SETTINGS mutations_sync = 2')
    // such a version kept a row per message in device_sequences, and no replay-window file
    const values = Object.entries(sent).flatMap(([d, seqs]) => seqs.map((seq) => ({ tenant_id: d.startsWith('a-') ? 'seq-a' : 'seq-b', device_id: d, seq })))
    await node.storage.conn.client.insert({ table: node.storage.conn.table('device_sequences'), values, format: 'JSONEachRow' })
    for (const d of Object.values(devices)) await d.client.endAsync()
    await node.close()
    rmSync(join(dir.path, 'replay-windows'))
    node = await startTestNode(dir.path)
    const after = await rowsOf<{ device_id: string; seq: string }>(node, 'SELECT device_id, toString(max(seq)) AS seq FROM {db}.device_heads GROUP BY device_id ORDER BY device_id')
    expect(after).toEqual(before)
    expect(after).toHaveLength(4)
    // what the restarted node answers (from memory, seeded from the table at start) is what the table holds
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    const answered = [
      ...await api.request<Array<{ device: string; seq: number }>>('GET', '/admin/tenants/seq-a/sequences?since=0'),
      ...await api.request<Array<{ device: string; seq: number }>>('GET', '/admin/tenants/seq-b/sequences?since=0'),
    ]
    expect(answered.map((h) => ({ device_id: h.device, seq: String(h.seq) })).sort((x, y) => (x.device_id < y.device_id ? -1 : 1))).toEqual(before)
    // migrations 10 and 14 made their views again; they are retired once the log is recovered (the node writes the heads)
    const views = await rowsOf<{ name: string }>(node, "SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView' ORDER BY name", { db: node.storage.conn.database })
    expect(views.map((v) => v.name)).toEqual([])
    // and the replay windows went from device_sequences into the file
    for (const d of Object.keys(devices)) expect(await windowSeen(node, dir.path, d), d).toEqual(sent[d]!.map(BigInt))
    expect(await count(node, 'device_sequences')).toBe(0)
  })
})
