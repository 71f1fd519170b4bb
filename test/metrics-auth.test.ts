/**
 * /metrics is for operators: without the metrics bearer token (by default the
 * admin token) it answers 401 and names no tenant; with it, connection counts
 * are one unlabelled total unless VF_METRICS_TENANT_LABELS is set (see
 * observability.test.ts for the labelled case). /healthz and /readyz stay open
 * and name no tenant either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { enrollAndConnect, startTestNode, tempDir, type TestDevice } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let d: TestDevice
const TENANT = 'care-metrics-q7'

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
  await node.registry.createTenant(TENANT, 'Q')
  d = await enrollAndConnect(node, TENANT, 'cal-q1', 'calarm', null)
}, 60_000)
afterAll(async () => {
  await d?.client.endAsync(true).catch(() => {})
  await node?.close()
  dir?.remove()
})

const get = async (path: string, token?: string): Promise<{ status: number; text: string; headers: Headers }> => {
  const r = await fetch(`http://127.0.0.1:${node.http.port}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })
  return { status: r.status, text: await r.text(), headers: r.headers }
}

describe('/metrics access', () => {
  it('answers 401 without the token, or with a wrong one, and names no tenant', async () => {
    for (const token of [undefined, '', 'x'.repeat(node.adminToken.length), node.adminToken.slice(0, -1)]) {
      const r = await get('/metrics', token)
      expect(r.status, String(token)).toBe(401)
      expect(r.text).not.toContain(TENANT)
      expect(r.text).not.toContain('vitalflow_')
    }
    expect((await get('/metrics')).headers.get('www-authenticate')).toMatch(/^Bearer/)
  })

  it('serves the metrics with the token (the admin token when VF_METRICS_TOKEN is unset), connections as one unlabelled total', async () => {
    const r = await get('/metrics', node.adminToken)
    expect(r.status).toBe(200)
    expect(r.text).toMatch(/^vitalflow_connections 1$/m)
    expect(r.text).not.toMatch(/tenant="/)
    expect(r.text).not.toContain(TENANT)
  })

  it('keeps /healthz and /readyz open, naming no tenant', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const r = await get(path)
      expect(r.status, path).toBe(200)
      expect(r.text).not.toContain(TENANT)
    }
  })
})
