/**
 * The policy is the one source: change it, and the register of processing
 * and the TTL clauses ClickHouse reports in SHOW CREATE TABLE both change.
 * Two nodes in turn on the same data directory, the second with another policy.
 */
import { afterAll, describe, expect, it } from 'vitest'
import pino from 'pino'
import { POLICY, type Policy } from '../src/consent/index.ts'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { rowsOf, tempDir, testConfig } from './support/node.ts'

const dir = tempDir('vf-policy-')
afterAll(() => { dir.remove() })

async function snapshot (policy: Policy): Promise<{ register: unknown; ttl: string; status: string; ttlWrites: number }> {
  const node: IngestNode = await startNode(testConfig(dir.path), pino({ level: 'silent' }), policy)
  try {
    await node.registry.createTenant('pol', 'Policy care')
    const ddl = async (t: string) => (await rowsOf<{ statement: string }>(node, `SHOW CREATE TABLE {db}.${t}`))[0]!.statement
    const writes = await rowsOf<{ n: string }>(node, 'SELECT count() AS n FROM {db}.retention_applied')
    return { register: node.rights.register('pol'), ttl: await ddl('vital_samples'), status: await ddl('device_status'), ttlWrites: Number(writes[0]!.n) }
  } finally {
    await node.close()
  }
}

describe('policy', () => {
  it('drives the register of processing and the table TTLs', async () => {
    const before = await snapshot(POLICY)
    // a restart with the same policy writes no TTL again (MODIFY TTL re-evaluates every part)
    expect((await snapshot(POLICY)).ttlWrites).toBe(before.ttlWrites)
    expect(before.ttl).toContain(`toIntervalDay(${POLICY.retention.vitals.defaultDays}) WHERE category = 'vitals'`)
    expect(before.status).toContain(`toIntervalDay(${POLICY.retention.device_diagnostics.defaultDays})`)
    const changed: Policy = {
      ...POLICY,
      version: 'changed',
      retention: { ...POLICY.retention, vitals: { ...POLICY.retention.vitals, defaultDays: 3653 }, device_diagnostics: { ...POLICY.retention.device_diagnostics, defaultDays: 400 } },
      furtherUse: POLICY.furtherUse.filter((u) => u.purpose !== 'research'),
    }
    const after = await snapshot(changed)
    expect(after.ttlWrites).toBe(before.ttlWrites + 2) // vital_samples and device_status changed
    expect(after.ttl).toContain("toIntervalDay(3653) WHERE category = 'vitals'")
    expect(after.ttl).not.toContain(`toIntervalDay(${POLICY.retention.vitals.defaultDays}) WHERE category = 'vitals'`)
    expect(after.status).toContain('toIntervalDay(400)')
    const purposes = (r: unknown) => (r as Array<{ purpose: string }>).map((a) => a.purpose)
    expect(purposes(before.register)).toContain('research')
    expect(purposes(after.register)).not.toContain('research')
    const care = (r: unknown) => (r as Array<{ purpose: string; categories: Array<{ category: string; retentionDays: number }> }>).find((a) => a.purpose === 'care')!
    expect(care(after.register).categories.find((c) => c.category === 'vitals')!.retentionDays).toBe(3653)
    expect(care(before.register).categories.find((c) => c.category === 'vitals')!.retentionDays).toBe(POLICY.retention.vitals.defaultDays)
  })
})
