/**
 * Server-mode isolation DDL. chDB cannot create users or row policies, so the
 * generated statements are parsed by ClickHouse itself (formatQuery) here; on
 * a server they are applied by POST /admin/tenants/:t/dashboard-user.
 */
import { createServer } from 'node:http'
import { once } from 'node:events'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { COLUMNS, DASHBOARD_TABLES, tenantAccessDdl } from '../src/storage/index.ts'
import { closeConnection, connect } from '../src/storage/connection.ts'
import { insertSettings, rowBinaryInserter } from '../src/storage/row-binary-insert.ts'
import { startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

async function parses (statement: string): Promise<string> {
  const rs = await node.storage.conn.client.query({ query: 'SELECT formatQuery({q:String}) AS f', query_params: { q: statement }, format: 'JSONEachRow' })
  return (await rs.json<{ f: string }>())[0]!.f
}

describe('tenant access DDL for ClickHouse server mode', () => {
  it('every generated statement is valid ClickHouse, for any tenant id', async () => {
    await fc.assert(fc.asyncProperty(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), async (tenant) => {
      const { user, statements } = tenantAccessDdl('vitalflow', tenant, 'a-long-dashboard-password')
      expect(statements).toHaveLength(3 + 3 * DASHBOARD_TABLES.length)
      for (const s of statements) await parses(s)
      const policies = statements.filter((s) => s.includes(`vf_tenant_${tenant}`))
      expect(policies).toHaveLength(DASHBOARD_TABLES.length)
      for (const p of policies) {
        expect(await parses(p)).toContain(`tenant_id = '${tenant}'`)
        expect(p).toContain(`TO \`${user}\``)
      }
      expect(statements.join('\n')).not.toContain('a-long-dashboard-password')
    }), { numRuns: 30 })
  })

  it('refuses ids that could break out of the literal', () => {
    for (const bad of ["x' OR 1=1 --", 'a\\b', '', 'x'.repeat(65)]) expect(() => tenantAccessDdl('vitalflow', bad, 'p')).toThrow()
  })

  it('the admin endpoint returns the statements in embedded mode and says they were not applied', async () => {
    await node.registry.createTenant('care-s', 'S')
    const r = await createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
      .request<{ user: string; applied: boolean; statements: string[]; password: string }>('POST', '/admin/tenants/care-s/dashboard-user', {})
    expect(r).toMatchObject({ user: 'vf_dash_care-s', applied: false })
    expect(r.password.length).toBeGreaterThanOrEqual(24)
    for (const s of r.statements) await parses(s)
  })
})

/**
 * VF_ACK_AFTER=store against a ClickHouse server. No server can run here, so the real server-mode
 * client (@clickhouse/client over HTTP) inserts into a loopback endpoint that answers as ClickHouse
 * would and records each request; ClickHouse itself (chDB, as above) then says whether the insert's
 * statement parses and whether its settings exist and take the values sent.
 */
describe('server-mode inserts with VF_ACK_AFTER=store', () => {
  interface Seen { url: URL; body: string }
  async function recordInsert (ackAfter: 'log' | 'store', table: keyof typeof COLUMNS): Promise<Seen> {
    const seen: Seen[] = []
    const server = createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (c: string) => { body += c })
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://clickhouse')
        seen.push({ url, body })
        // the column types the inserter reads first (their names are what it needs)
        const t = url.searchParams.get('param_t') as keyof typeof COLUMNS | null
        res.end(body.includes('system.columns') && t !== null ? COLUMNS[t].map((name) => JSON.stringify({ name, type: 'String' })).join('\n') + '\n' : '')
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const conn = await connect({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, dataDir: dir.path, database: 'vitalflow' })
      const insertInto = await rowBinaryInserter(conn, join(dir.path, 'spool-server'), { ackAfter, quorum: 2 })
      await (await insertInto(table))(Buffer.from([1, 2, 3]), `${table}:1-9`)
      await closeConnection(conn)
    } finally {
      server.close()
    }
    const insert = seen.find((r) => (r.url.searchParams.get('query') ?? r.body).startsWith('INSERT'))
    expect(insert, 'an INSERT reached the server').toBeDefined()
    return insert!
  }
  const QUORUM = ['insert_quorum', 'insert_quorum_parallel', 'distributed_foreground_insert']

  it('an acknowledged table\'s insert waits for a quorum of replicas, and of shards; ClickHouse knows each setting and takes its value', async () => {
    for (const table of ['vital_samples', 'alarm_events', 'device_sequences'] as const) {
      const { url } = await recordInsert('store', table)
      expect(url.searchParams.get('insert_quorum'), table).toBe('2')
      expect(url.searchParams.get('insert_quorum_parallel'), table).toBe('1')
      expect(url.searchParams.get('distributed_foreground_insert'), table).toBe('1')
      expect(url.searchParams.get('insert_deduplication_token'), table).toBe(`${table}:1-9`)
      const statement = url.searchParams.get('query')!
      expect(await parses(statement)).toContain(`INSERT INTO vitalflow.${table}`)
      // the settings exist, by these names, and take these values (ClickHouse refuses an unknown one or a bad value)
      const names = [...QUORUM, 'insert_deduplication_token']
      const known = await node.storage.conn.client.query({ query: 'SELECT name FROM system.settings WHERE name IN {n:Array(String)} ORDER BY name', query_params: { n: names }, format: 'JSONEachRow' })
      expect((await known.json<{ name: string }>()).map((r) => r.name)).toEqual([...names].sort())
      const assigned = names.map((n) => `${n} = ${n === 'insert_deduplication_token' ? `'${table}:1-9'` : url.searchParams.get(n)!}`).join(', ')
      await node.storage.conn.client.command({ query: `SELECT 1 SETTINGS ${assigned}` })
    }
  }, 60_000)

  it('with the default (log), or for a table nobody is acknowledged for, an insert carries its token only; embedded chDB never gets the quorum', async () => {
    const { url } = await recordInsert('log', 'vital_samples')
    for (const s of QUORUM) expect(url.searchParams.has(s), s).toBe(false)
    expect(url.searchParams.get('insert_deduplication_token')).toBe('vital_samples:1-9')
    const refused = await recordInsert('store', 'rejected_messages')
    for (const s of QUORUM) expect(refused.url.searchParams.has(s), s).toBe(false)
    expect(insertSettings('embedded', { ackAfter: 'store', quorum: 2 }, 'vital_samples', 't')).toEqual({ insert_deduplication_token: 't' })
    expect(insertSettings('server', { ackAfter: 'store', quorum: 3 }, 'spot_measurements', undefined)).toEqual({ insert_quorum: '3', insert_quorum_parallel: 1, distributed_foreground_insert: 1 })
  }, 60_000)
})
