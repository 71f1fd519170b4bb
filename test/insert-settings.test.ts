/**
 * A logged batch's deduplication token belongs to that insert alone. chdb's connection sends a
 * statement's `clickhouse_settings` as `SET k = v; ` before it, and a SET stays in the chDB session:
 * every later statement on the connection carried the last batch's token, so an insert of its own
 * (an erasure's pseudonymised copy, a repair by hand) into a table with a deduplication window was
 * taken for a repeat of that batch and its rows were dropped without an error. Real node, real chDB
 * in a temp dir, a real cAlarm over MQTT/TLS. Own file: one chDB data directory per process.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { settingsClause } from '../src/storage/row-binary-insert.ts'
import { createAlarmModel } from '../devices/index.ts'
import { enrollAndConnect, publishAcked, rowsOf, startTestNode, tempDir, type TestDevice } from './support/node.ts'

const T = 'care-settings'
let dir: ReturnType<typeof tempDir>
let node: IngestNode
let alarm: TestDevice

beforeAll(async () => {
  dir = tempDir('vf-insert-settings-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant(T, T)
  await node.registry.createPatient(T, 'p-s')
  alarm = await enrollAndConnect(node, T, 'cal-s', 'calarm', 'p-s')
}, 60_000)
afterAll(async () => {
  await alarm?.client.endAsync()
  await node?.close()
  dir?.remove()
})

describe('an embedded insert\'s settings', () => {
  it('end with the insert: a later statement on the connection carries no token, and an insert of its own into the same table is stored', async () => {
    const press = alarm.sealer.seal('alarm', createAlarmModel(11, { pressProbability: 1 }).next(Date.now() - 1000))
    expect(await publishAcked(alarm.client, press.topic, press.frame)).toBe(true)
    // the alarm's batch is inserted (under its token) on the connection the statements below use
    expect(await rowsOf(node, 'SELECT seq FROM {db}.alarm_events WHERE device_id = {d:String}', { d: 'cal-s' })).toHaveLength(1)

    // the shape of an erasure's copy: the same table, on the same connection, no token of its own
    const client = node.storage.conn.client
    await client.command({ query: `INSERT INTO ${node.storage.conn.table('alarm_events')} SELECT * REPLACE (seq + 1000 AS seq) FROM ${node.storage.conn.table('alarm_events')} AS src WHERE src.device_id = 'cal-s'` })
    const seqs = await rowsOf<{ s: string }>(node, 'SELECT toString(seq) AS s FROM {db}.alarm_events WHERE device_id = {d:String} ORDER BY seq', { d: 'cal-s' })
    expect(seqs).toEqual([{ s: String(press.seq) }, { s: String(BigInt(press.seq) + 1000n) }])
    const token = await rowsOf<{ t: string }>(node, "SELECT getSetting('insert_deduplication_token') AS t")
    expect(token).toEqual([{ t: '' }])
  })

  it('are written as a SETTINGS clause ClickHouse reads back as the same values', async () => {
    const client = node.storage.conn.requests.client
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 40 }), async (token) => {
      const clause = settingsClause({ insert_deduplication_token: token })
      const r = await (await client.query({ query: `SELECT getSetting('insert_deduplication_token') AS t${clause}`, format: 'JSONEachRow' })).json<{ t: string }>()
      expect(r).toEqual([{ t: token }])
    }), { numRuns: 40 })
    expect(settingsClause({})).toBe('')
    expect(() => settingsClause({ 'x = 1; DROP TABLE y': 1 })).toThrow(/not a setting name/)
  })
})
