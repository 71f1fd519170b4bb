/**
 * In embedded mode the logged tables insert their parts without fsync, and the write-ahead log makes
 * them durable with one syncfs before each checkpoint (src/storage/part-sync.ts). A power cut cannot
 * be staged here, so what is checked is the order it relies on: a checkpoint is never written before
 * a sync that succeeded after its rows were inserted. The failing sync is a fault hook (`syncParts`,
 * the only thing not real here); the node, aedes, TLS, an mqtt.js cAlarm and chDB are real.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { sharedSync } from '../src/storage/part-sync.ts'
import { createAlarmModel } from '../devices/index.ts'
import { connectTls, enrollAndConnect, publishAcked, rowsOf, tempDir, testConfig } from './support/node.ts'

const T = 'care-sync'
const dir = tempDir('vf-part-sync-')
let node: IngestNode | null = null
afterAll(async () => { await node?.close(); dir.remove() })

const checkpoint = (lane: string): Record<string, number> => {
  try { return JSON.parse(readFileSync(join(dir.path, lane, 'checkpoint.json'), 'utf8')) as Record<string, number> } catch { return {} }
}
const storedSeqs = async (n: IngestNode): Promise<number[]> =>
  (await rowsOf<{ s: string }>(n, 'SELECT toString(seq) AS s FROM {db}.alarm_events WHERE device_id = {d:String} ORDER BY seq', { d: 'cal-sync' })).map((r) => Number(r.s))

describe('parts made durable by a sync before the checkpoint', () => {
  it('inserts the logged tables without fsync and the registry tables with it', async () => {
    node = await startNode(testConfig(dir.path))
    const tables = await rowsOf<{ name: string; q: string }>(node,
      "SELECT name, create_table_query AS q FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'", { db: node.storage.conn.database })
    const q = (name: string): string => tables.find((t) => t.name === name)?.q ?? ''
    for (const t of ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status', 'device_sequences']) {
      expect(q(t), t).toContain('fsync_after_insert = 0')
      expect(q(t), t).toContain('min_rows_to_fsync_after_merge = 1') // a merge replaces parts that may be checkpointed
    }
    for (const t of ['consent_events', 'devices', 'rejected_messages', 'erasure_receipts']) expect(q(t), t).toContain('fsync_after_insert = 1')
    await node.close()
    node = null
  }, 60_000)

  it('writes no checkpoint while the sync fails, so a restart inserts the rows again, stored once', async () => {
    let syncs = 0
    node = await startNode(testConfig(dir.path), undefined, undefined, {
      syncParts: async () => { syncs++; throw new Error('syncfs failed (injected)') },
    })
    await node.registry.createTenant(T, 'Care sync')
    await node.registry.createPatient(T, 'p-sync')
    const d = await enrollAndConnect(node, T, 'cal-sync', 'calarm', 'p-sync')
    const before = checkpoint('wal-priority')['alarm_events'] ?? 0
    const alarms = createAlarmModel(9)
    const sent: number[] = []
    for (let i = 0; i < 12; i++) {
      const m = d.sealer.seal('alarm', alarms.next(Date.now() - 1000))
      expect(await publishAcked(d.client, m.topic, m.frame)).toBe(true)
      sent.push(m.seq)
    }
    await node.storage.flush()
    // the rows are in ClickHouse, but nothing says so on disk: the sync did not succeed
    expect(await storedSeqs(node)).toEqual(sent)
    expect(syncs).toBeGreaterThan(0)
    expect(checkpoint('wal-priority')['alarm_events'] ?? 0).toBe(before)
    await d.client.endAsync(true)
    await node.close()

    // a real syncfs now: the log ships what the checkpoint did not cover, under the same deduplication tokens
    node = await startNode(testConfig(dir.path))
    expect(node.storage.stats().recoveredRows).toBeGreaterThanOrEqual(sent.length)
    await node.storage.flush()
    expect(await storedSeqs(node)).toEqual(sent)
    expect(checkpoint('wal-priority')['alarm_events'] ?? 0).toBeGreaterThan(before)
    // and the device goes on as before
    const c = await connectTls(node, 'cal-sync', d.enrollment.secret)
    const m = d.sealer.seal('alarm', alarms.next(Date.now() - 1000))
    expect(await publishAcked(c, m.topic, m.frame)).toBe(true)
    await c.endAsync(true)
  }, 90_000)
})

describe('sharedSync', () => {
  it('a call during a sync gets the next one, which starts after it; calls meanwhile share it', async () => {
    const runs: Array<{ release: () => void }> = []
    let fail = false
    const s = sharedSync(() => new Promise<void>((resolve, reject) => { runs.push({ release: () => { if (fail) reject(new Error('x')); else resolve() } }) }))
    const first = s()
    const second = s()
    const third = s()
    expect(runs).toHaveLength(1) // the second and third wait for the first to end
    runs[0]!.release()
    await expect(first).resolves.toBeUndefined()
    await new Promise((resolve) => setImmediate(resolve))
    expect(runs).toHaveLength(2)
    fail = true
    runs[1]!.release()
    await expect(second).rejects.toThrow('x')
    await expect(third).rejects.toThrow('x')
    fail = false
    const fourth = s()
    expect(runs).toHaveLength(3)
    runs[2]!.release()
    await expect(fourth).resolves.toBeUndefined()
  })
})

describe('FileSystemSyncer', () => {
  it('answers each sync from one helper, in order, reports a failed sync, and refuses after close', async () => {
    const { FileSystemSyncer } = await import('../src/storage/part-sync.ts')
    const ok = new FileSystemSyncer(dir.path)
    await Promise.all([ok.sync(), ok.sync(), ok.sync()])
    const bad = new FileSystemSyncer(join(dir.path, 'no-such-directory'))
    await expect(bad.sync()).rejects.toThrow('failed')
    await expect(bad.sync()).rejects.toThrow('failed') // the helper lives on after a failed sync
    bad.close()
    ok.close()
    await expect(ok.sync()).rejects.toThrow('closed')
  })
})
