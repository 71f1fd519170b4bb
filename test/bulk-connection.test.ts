/**
 * Sample inserts (vital_samples, the largest by far) run on an embedded chDB connection of their own:
 * a connection runs one statement at a time, and on a shared one every insert of sequence numbers,
 * of what is queryable (device_heads), of alarms and of status waited behind a sample insert of tens of
 * thousands of rows (bench/RESULTS.md, issue 18). Here the bulk connection is held busy by a statement
 * of its own; an alarm is stored meanwhile, a bracelet batch only once it is released.
 * Real node (chDB in a temp dir). Own file: one chDB data directory per process.
 */
import { threadId } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { BULK_INSERTS } from '../src/storage/row-binary-insert.ts'
import { createAlarmModel, createBraceletModel, expectedRows } from '../devices/index.ts'
import { enrollAndConnect, holdConnection, publishAcked, startTestNode, tempDir, until, type TestDevice } from './support/node.ts'

const T = 'care-bulk'
let dir: ReturnType<typeof tempDir>
let node: IngestNode
const devices: TestDevice[] = []

beforeAll(async () => {
  dir = tempDir('vf-bulk-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant(T, T)
  await node.registry.createPatient(T, 'p-b')
  for (const category of ['vitals', 'sleep', 'activity'] as const) {
    await node.registry.recordConsent({ tenant: T, patient: 'p-b', purpose: 'care', category, action: 'grant', recordedBy: 'nurse-1', source: 'paper_form', validFromMs: 0 })
  }
}, 60_000)
afterAll(async () => {
  for (const d of devices) await d.client.endAsync()
  await node?.close()
  dir?.remove()
})

/** Rows of a device in a table, read on the requests connection (a flush would wait for the held one). */
async function stored (table: string, device: string): Promise<number> {
  const r = await (await node.storage.conn.requests.client.query({
    query: `SELECT count() AS n FROM ${node.storage.conn.table(table)} WHERE device_id = {d:String}`, query_params: { d: device }, format: 'JSONEachRow',
  })).json<{ n: string }>()
  return Number(r[0]!.n)
}

describe('the bulk insert connection', () => {
  it('is a connection of its own in embedded mode, for the sample inserts only', () => {
    expect(node.storage.conn.mode).toBe('embedded')
    expect(node.storage.conn.bulk).not.toBe(node.storage.conn.client)
    expect(node.storage.conn.bulk).not.toBe(node.storage.conn.requests.client)
    expect([...BULK_INSERTS]).toEqual(['vital_samples'])
  })

  it('stores an alarm and its head while a sample insert waits behind a statement on the bulk connection', async () => {
    const brc = await enrollAndConnect(node, T, 'brc-b', 'bracelet', 'p-b')
    const cal = await enrollAndConnect(node, T, 'cal-b', 'calarm', 'p-b')
    devices.push(brc, cal)
    // should the inserts share that connection, nothing below is stored before it is released: the
    // assertions then fail
    const held = await holdConnection(node.storage.conn.bulk)

    const batch = createBraceletModel(5).nextBatch(Date.now() - 120_000)
    const samples = brc.sealer.seal('vitals', batch)
    expect(await publishAcked(brc.client, samples.topic, samples.frame)).toBe(true)
    const fall = cal.sealer.seal('alarm', createAlarmModel(3, { fallProbability: 1 }).next(Date.now() - 1000))
    expect(await publishAcked(cal.client, fall.topic, fall.frame)).toBe(true)
    await until(async () => held.done() || (await stored('alarm_events', 'cal-b') === 1 && await stored('device_heads', 'cal-b') === 1))
    const whileBusy = { bulkHeld: !held.done(), samples: await stored('vital_samples', 'brc-b'), heads: await stored('device_heads', 'brc-b') }
    held.release()
    expect(await held.busy).toEqual([{ n: 1 }])
    expect(whileBusy).toEqual({ bulkHeld: true, samples: 0, heads: 0 })
    expect(await stored('alarm_events', 'cal-b')).toBe(1)
    // released: the samples follow, and then their head (what is queryable never runs ahead of the rows)
    await until(async () => await stored('device_heads', 'brc-b') === 1)
    expect(await stored('vital_samples', 'brc-b')).toBe(expectedRows('vitals', batch))
  }, 60_000)

  it('takes the samples as Native, written by the relay worker, and stores every value as sent', async () => {
    const brc = await enrollAndConnect(node, T, 'brc-n', 'bracelet', 'p-b')
    devices.push(brc)
    const before = node.storage.stats().native!
    const batch = createBraceletModel(9).nextBatch(Date.now() - 120_000)
    const sealed = brc.sealer.seal('vitals', batch)
    expect(await publishAcked(brc.client, sealed.topic, sealed.frame)).toBe(true)
    await node.storage.flush()
    const native = node.storage.stats().native!
    // only the samples go through the worker: its rows are this batch's
    expect(native.rows - before.rows).toBe(expectedRows('vitals', batch))
    expect(native.threads.length).toBeGreaterThan(0)
    expect(native.threads).not.toContain(threadId)
    const hr = await (await node.storage.conn.requests.client.query({
      query: `SELECT value, toUnixTimestamp64Milli(ts) AS ts, quality, idx FROM ${node.storage.conn.table('vital_samples')}
              WHERE device_id = 'brc-n' AND metric = 'heart_rate' ORDER BY ts`, format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    })).json<{ value: number; ts: number; quality: number; idx: number }>()
    const s = batch.heartRate!
    expect(hr.map((r) => Math.fround(r.value))).toEqual(s.values.map((v) => Math.fround(v)))
    expect(hr.map((r) => r.ts)).toEqual(s.values.map((_, i) => batch.windowStartMs + s.offsetMs + i * s.intervalMs))
    expect(hr.map((r) => r.quality)).toEqual(s.values.map((_, i) => batch.heartRateQuality[i] ?? 255))
    expect(hr.map((r) => r.idx)).toEqual(s.values.map((_, i) => i))
  }, 60_000)
})
