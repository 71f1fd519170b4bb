/**
 * Replay marks without a view on every telemetry insert (migration 14): the ingest path logs each
 * message's sequence number with its rows, device_sequences gets one row per message (a bracelet
 * batch's 69 samples included), and after a restart a stored message is refused as a replay while one
 * never stored is taken. A log written before the upgrade (rows without their sequence rows) still
 * gives its messages their marks: the old views are dropped only once it is recovered.
 * Real node (aedes over TLS, chDB in a temp dir). Own file: one chDB data directory per process.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Grant } from '../src/consent/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { alarmRows, storedSequences, WriteAheadLog } from '../src/storage/index.ts'
import { connect, closeConnection } from '../src/storage/connection.ts'
import { createAlarmModel, createBraceletModel, createSpotModel, encodePayload } from '../devices/index.ts'
import { connectTls, count, enrollAndConnect, publishAcked, rowsOf, startTestNode, tempDir, until, windowSeen, type TestDevice } from './support/node.ts'

const T = 'care-q'
let dir: ReturnType<typeof tempDir>
let node: IngestNode
const devices: Record<string, TestDevice> = {}
const alarms = createAlarmModel(5)
const at = Date.now() - 3_600_000
const encodeAlarm = (): Uint8Array => encodePayload('alarm', alarms.next(at))
const encodeSpot = (): Uint8Array => encodePayload('spot', createSpotModel(3).next(at))

const seqsOf = async (device: string): Promise<number[]> => (await windowSeen(node, dir.path, device)).map(Number)
const replays = (device: string): Promise<number> => count(node, 'rejected_messages', "device_id = {d:String} AND reason = 'ING_ERR_REPLAY'", { d: device })
const views = async (): Promise<string[]> => (await rowsOf<{ name: string }>(node,
  "SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView' ORDER BY name", { db: node.storage.conn.database })).map((r) => r.name)

async function stop (): Promise<void> {
  for (const d of Object.values(devices)) if (d.client.connected) await d.client.endAsync()
  await node.close()
}
async function start (): Promise<void> {
  node = await startTestNode(dir.path)
  for (const [id, d] of Object.entries(devices)) d.client = await connectTls(node, id, d.enrollment.secret)
}

beforeAll(async () => {
  dir = tempDir('vf-seqrows-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant(T, T)
  await node.registry.createPatient(T, 'q-p')
  await node.registry.recordConsent({ tenant: T, patient: 'q-p', purpose: 'care', category: 'vitals', action: 'grant', recordedBy: 'x', source: 'app', validFromMs: 0 })
  await node.registry.createPatient(T, 'q-none') // no consent at all: a kit's measurements are filtered, no row is stored
  devices['q-brc'] = await enrollAndConnect(node, T, 'q-brc', 'bracelet', 'q-p')
  devices['q-cal'] = await enrollAndConnect(node, T, 'q-cal', 'calarm', 'q-p')
  devices['q-kit'] = await enrollAndConnect(node, T, 'q-kit', 'cvitals', 'q-none')
}, 60_000)
afterAll(async () => {
  for (const d of Object.values(devices)) if (d.client.connected) await d.client.endAsync(true).catch(() => {})
  await node?.close()
  dir?.remove()
})

describe('sequence rows from the ingest path', () => {
  it('no telemetry insert runs a view into device_sequences; each message has one sequence row, a filtered one too', async () => {
    // no view at all: device_sequences and device_heads (what is queryable) are written by the node
    expect(await views()).toEqual([])
    const brc = devices['q-brc']!
    const kit = devices['q-kit']!
    const bracelet = createBraceletModel(2)
    const spot = createSpotModel(2)
    for (let i = 0; i < 3; i++) {
      const b = brc.sealer.seal('vitals', bracelet.nextBatch(at + i * 60_000))
      expect(await publishAcked(brc.client, b.topic, b.frame)).toBe(true)
      const s = kit.sealer.seal('spot', spot.next(at + i * 60_000))
      expect(await publishAcked(kit.client, s.topic, s.frame)).toBe(true)
    }
    expect(await count(node, 'vital_samples', "device_id = 'q-brc'")).toBeGreaterThan(3 * 60)
    expect(await seqsOf('q-brc')).toEqual([1, 2, 3])
    expect(await count(node, 'spot_measurements', "device_id = 'q-kit'")).toBe(0)
    expect(await seqsOf('q-kit')).toEqual([1, 2, 3])
    // device_heads still says what is queryable: the bracelet's rows, the kit's filtered messages
    const heads = await rowsOf<{ d: string; s: string }>(node, 'SELECT device_id AS d, toString(max(seq)) AS s FROM {db}.device_heads WHERE tenant_id = {t:String} GROUP BY d ORDER BY d', { t: T })
    expect(heads).toEqual([{ d: 'q-brc', s: '3' }, { d: 'q-kit', s: '3' }])
  })

  it('after a restart a stored message is refused as a replay, and one below the high mark that was never stored is taken once', async () => {
    const cal = devices['q-cal']!
    const frame = (seq: number): Uint8Array => cal.sealer.sealRaw('alarm', seq, encodeAlarm())
    const f = { 1: frame(1), 2: frame(2), 3: frame(3), 5: frame(5) }
    for (const s of [1, 2, 3, 5] as const) expect(await publishAcked(cal.client, 'v1/care-q/q-cal/alarm', f[s])).toBe(true)
    expect(await seqsOf('q-cal')).toEqual([1, 2, 3, 5])
    await stop()
    await start()
    const before = await replays('q-cal')
    const c = devices['q-cal']!.client
    for (const s of [1, 3, 5] as const) expect(await publishAcked(c, 'v1/care-q/q-cal/alarm', f[s])).toBe(true)
    const f4 = frame(4) // sealed, never sent before the restart
    expect(await publishAcked(c, 'v1/care-q/q-cal/alarm', f4)).toBe(true)
    expect(await publishAcked(c, 'v1/care-q/q-cal/alarm', f4)).toBe(true)
    await node.storage.flush()
    expect(await replays('q-cal') - before).toBe(4)
    expect(await count(node, 'alarm_events', "device_id = 'q-cal'")).toBe(5)
    expect(await seqsOf('q-cal')).toEqual([1, 2, 3, 4, 5])
    // the filtered kit's messages stored no row, yet are replays after the restart too
    const kit = devices['q-kit']!
    const kitBefore = await replays('q-kit')
    const resent = kit.sealer.sealRaw('spot', 2, encodeSpot())
    expect(await publishAcked(kit.client, 'v1/care-q/q-kit/spot', resent)).toBe(true)
    expect(await replays('q-kit') - kitBefore).toBe(1)
  }, 60_000)

  it('a log written before the upgrade still gives its rows their sequence rows: the old views go only once it is shipped', async () => {
    await stop()
    // the store as the previous version left it: its views, and in the log a message's rows without a sequence row
    const conn = await connect({ dataDir: dir.path, database: node.storage.conn.database })
    const db = conn.database
    for (const t of ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status']) {
      await conn.client.command({ query: `CREATE MATERIALIZED VIEW ${db}.${t}_sequences TO ${db}.device_sequences AS SELECT DISTINCT tenant_id, device_id, seq FROM ${db}.${t}` })
    }
    await closeConnection(conn)
    const grant = { purpose: 'care', basis: 'contract', version: 0, fromMs: 0 } as const satisfies Grant
    const msg = alarms.next(at)
    const rows = alarmRows({ tenant: T, patient: 'q-p', device: 'q-cal', seq: 9n, ingestedAt: Date.now(), gate: () => grant }, msg)
    const { wal } = await WriteAheadLog.open(join(dir.path, 'wal'), { segmentBytes: 64 * 1024 ** 2 })
    await wal.append('alarm_events', rows.rows, rows.chunk)
    await wal.close()

    await start()
    expect(await count(node, 'alarm_events', "device_id = 'q-cal' AND seq = 9")).toBe(1)
    expect(await seqsOf('q-cal')).toContain(9)
    expect(await views()).toEqual([])
    const cal = devices['q-cal']!
    const before = await replays('q-cal')
    expect(await publishAcked(cal.client, 'v1/care-q/q-cal/alarm', cal.sealer.sealRaw('alarm', 9, encodeAlarm()))).toBe(true)
    expect(await replays('q-cal') - before).toBe(1)
    expect(await count(node, 'alarm_events', "device_id = 'q-cal' AND seq = 9")).toBe(1)
  }, 60_000)

  it('a store from before the replay-window file seeds it exactly from device_sequences, then empties the table; without either, windows close at the heads', async () => {
    await stop()
    rmSync(join(dir.path, 'replay-windows'))
    // what an earlier version left: a row per message in device_sequences (q-cal's 20 and 22 stored, 21 never)
    const conn = await connect({ dataDir: dir.path, database: node.storage.conn.database })
    await conn.client.insert({ table: `${conn.database}.device_sequences`, values: [20, 22].map((seq) => ({ tenant_id: T, device_id: 'q-cal', seq })), format: 'JSONEachRow' })
    await closeConnection(conn)
    await start()
    expect(await count(node, 'device_sequences')).toBe(0)
    expect((await seqsOf('q-cal')).filter((x) => x >= 20)).toEqual([20, 22])
    const cal = devices['q-cal']!
    const send = async (d: TestDevice, stream: 'alarm' | 'spot', seq: number): Promise<void> => {
      expect(await publishAcked(d.client, `v1/care-q/${d.enrollment.device}/${stream}`, d.sealer.sealRaw(stream, seq, stream === 'alarm' ? encodeAlarm() : encodeSpot()))).toBe(true)
    }
    let before = await replays('q-cal')
    for (const seq of [20, 22, 21]) await send(cal, 'alarm', seq)
    expect(await replays('q-cal') - before).toBe(2) // 21 was never stored: taken
    expect(await count(node, 'alarm_events', "device_id = 'q-cal' AND seq = 21")).toBe(1)

    // the file lost (or damaged) and device_sequences empty: each device's window is closed at its head
    await stop()
    writeFileSync(join(dir.path, 'replay-windows'), 'not a replay-window file')
    await start()
    const kit = devices['q-kit']!
    before = await replays('q-kit')
    await send(kit, 'spot', 1) // logged before: the head (3) is above it
    await send(kit, 'spot', 4) // above the head: new
    expect(await replays('q-kit') - before).toBe(1)
    expect(await seqsOf('q-kit')).toEqual([0, 1, 2, 3, 4]) // closed: everything at or below the head, 0 included
    before = await replays('q-cal')
    await send(cal, 'alarm', 21) // its head
    await send(cal, 'alarm', 23)
    expect(await replays('q-cal') - before).toBe(1)
  }, 60_000)

  it('says a message is queryable only once its rows are stored', async () => {
    const brc = devices['q-brc']!
    const db = node.storage.conn.database
    const head = async (): Promise<number | undefined> => (await storedSequences(node.storage, T, 0)).find((r) => r.device === 'q-brc')?.seq
    const failures = node.metrics.flushErrors
    await node.storage.conn.client.command({ query: `DETACH TABLE ${db}.vital_samples` })
    const b = brc.sealer.seal('vitals', createBraceletModel(3).nextBatch(at + 10 * 60_000))
    expect(await publishAcked(brc.client, b.topic, b.frame)).toBe(true) // in the log
    await until(() => node.metrics.flushErrors > failures)
    // longer than device_heads' batch age (250 ms): a head written when the message was logged would be there
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect(await head()).toBeLessThan(b.seq)
    await node.storage.conn.client.command({ query: `ATTACH TABLE ${db}.vital_samples` })
    await until(async () => await head() === b.seq)
    expect(await count(node, 'vital_samples', 'device_id = {d:String} AND seq = {s:UInt64}', { d: 'q-brc', s: b.seq })).toBeGreaterThan(60)
  }, 60_000)
})
