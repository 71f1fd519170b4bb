/**
 * Requests (the API's reads and the writes they make) run on a chDB connection of their own, beside
 * the one the batcher inserts on: embedded chDB runs one statement at a time per connection, so on a
 * shared one a dashboard read waited for every insert queued before it (bench/RESULTS.md, issue 18
 * part 3). Both connections are on the one data path: a request sees what the ingest path stored as
 * soon as it is stored, and the ingest path sees what a request wrote.
 * Real node (chDB in a temp dir). Own file: one chDB data directory per process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { closeConnection, connect } from '../src/storage/connection.ts'
import { createAlarmModel } from '../devices/index.ts'
import { enrollAndConnect, holdConnection, publishAcked, startTestNode, tempDir } from './support/node.ts'

const T = 'care-rq'
let dir: ReturnType<typeof tempDir>
let node: IngestNode

beforeAll(async () => {
  dir = tempDir('vf-requests-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant(T, T)
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('a connection for requests', () => {
  it('is a connection of its own in embedded mode', () => {
    expect(node.storage.conn.mode).toBe('embedded')
    expect(node.storage.conn.requests).not.toBe(node.storage.conn)
    expect(node.storage.conn.requests.client).not.toBe(node.storage.conn.client)
  })

  it('answers a request while the ingest connection is busy with a statement of its own', async () => {
    // if requests queued behind it, the answer would come only once it is released: the assertion below then fails
    const held = await holdConnection(node.storage.conn.client)
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    const answered = await api.request<unknown[]>('GET', `/admin/tenants/${T}/sequences?since=0`)
    const whileBusy = !held.done()
    held.release()
    expect(await held.busy).toEqual([{ n: 1 }])
    expect(answered).toEqual([])
    expect(whileBusy).toBe(true)
  }, 60_000)

  it('sees what the ingest path stored once it is stored, and the ingest path sees what a request wrote', async () => {
    // written by a request (enrolment: the registry is on the requests connection), read on the ingest connection
    const d = await enrollAndConnect(node, T, 'rq-cal', 'calarm', null)
    const onIngest = await (await node.storage.conn.client.query({
      query: `SELECT count() AS n FROM ${node.storage.conn.table('devices')} WHERE device_id = 'rq-cal'`, format: 'JSONEachRow',
    })).json<{ n: string }>()
    expect(Number(onIngest[0]!.n)).toBe(1)
    const f = d.sealer.seal('alarm', createAlarmModel(1).next(Date.now() - 1000))
    expect(await publishAcked(d.client, f.topic, f.frame)).toBe(true)
    await node.storage.flush() // inserted on the ingest connection
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    expect(await api.request('GET', `/admin/tenants/${T}/sequences?since=0`)).toEqual([{ device: 'rq-cal', seq: f.seq }])
    await d.client.endAsync()
  }, 60_000)

  it('is closed with the node: another data directory opens in this process afterwards', async () => {
    await node.close()
    // chDB binds one data directory per process while any connection to it is open
    const other = tempDir('vf-requests-other-')
    try {
      const conn = await connect({ dataDir: other.path, database: 'other' })
      await closeConnection(conn)
    } finally {
      other.remove()
    }
  }, 60_000)
})
