/**
 * Server-mode isolation DDL. chDB cannot create users or row policies, so the
 * generated statements are parsed by ClickHouse itself (formatQuery) here; on
 * a server they are applied by POST /admin/tenants/:t/dashboard-user.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { DASHBOARD_TABLES, tenantAccessDdl } from '../src/storage/index.ts'
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
