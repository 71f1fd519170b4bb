/**
 * The embedded node's in-memory record of what is queryable (src/storage/stored-heads.ts), against a
 * model: every head recorded, by tenant and device. Properties over any interleaving of inserted heads
 * batches (RowBinary, as the device_heads batcher inserts them) and polls: a full answer is each
 * device's highest number from `since` on, only the tenant's own; a poller that follows the cursor it
 * is handed misses no raise. The table's side of it (the same answers over a real node, and across a
 * restart) is test/sequences.test.ts.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { StoredHeads } from '../src/storage/stored-heads.ts'
import { sequenceRow } from '../src/storage/rows.ts'

const tenants = ['t-a', 't-b', 'ü-ç'] as const
const head = fc.record({ tenant: fc.constantFrom(...tenants), device: fc.constantFrom('d1', 'd2', 'd3', 'dé', ''), seq: fc.bigInt({ min: 0n, max: 2n ** 40n }) })
type Head = { tenant: string; device: string; seq: bigint }
const op = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), rows: fc.array(head, { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('poll' as const), tenant: fc.constantFrom(...tenants) }),
  fc.record({ kind: fc.constant('wait' as const) }),
)

function model (rows: Head[], tenant: string, since: bigint): Record<string, number> {
  const out: Record<string, bigint> = {}
  for (const r of rows) if (r.tenant === tenant && r.seq >= since && (out[r.device] === undefined || r.seq > out[r.device]!)) out[r.device] = r.seq
  return Object.fromEntries(Object.entries(out).map(([d, s]) => [d, Number(s)]))
}
const asMap = (heads: Array<{ device: string; seq: number }>): Record<string, number> => Object.fromEntries(heads.map((h) => [h.device, h.seq]))

describe('stored heads in memory', () => {
  it('answer each device\'s highest recorded number from `since` on, only the tenant\'s own; a poller following the cursor misses no raise', async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { maxLength: 40 }), fc.bigInt({ min: 0n, max: 2n ** 40n }), async (ops, since) => {
      const heads = new StoredHeads()
      const recorded: Head[] = []
      const cursor = new Map<string, number | undefined>()
      const seen: Record<string, Record<string, number>> = {}
      const follow = (tenant: string): void => {
        const a = heads.since(tenant, 0, cursor.get(tenant))
        const s = seen[tenant] ??= {}
        for (const h of a.heads) s[h.device] = Math.max(s[h.device] ?? 0, h.seq)
        cursor.set(tenant, a.next)
      }
      for (const o of ops) {
        if (o.kind === 'insert') {
          heads.recordRows(Buffer.concat(o.rows.map((r) => sequenceRow(r.tenant, r.device, r.seq))))
          recorded.push(...o.rows)
        } else if (o.kind === 'poll') follow(o.tenant)
        else await new Promise((resolve) => setTimeout(resolve, 2))
      }
      for (const t of tenants) {
        expect(asMap(heads.since(t, Number(since)).heads)).toEqual(model(recorded, t, since))
        follow(t)
        expect(seen[t] ?? {}).toEqual(model(recorded, t, 0n))
      }
    }), { numRuns: 200 })
  })

  it('a head seeded from the table keeps its time; a lower number stored later changes nothing', () => {
    const heads = new StoredHeads()
    heads.record('t', 'd', 10n, 1_000)
    expect(heads.since('t', 0, 1_000)).toEqual({ heads: [{ device: 'd', seq: 10 }], next: 1_000 })
    heads.recordRows(sequenceRow('t', 'd', 7n))
    expect(heads.since('t', 0, 1_001)).toEqual({ heads: [], next: 1_001 })
    heads.recordRows(sequenceRow('t', 'd', 11n))
    const raised = heads.since('t', 0, 1_001)
    expect(raised.heads).toEqual([{ device: 'd', seq: 11 }])
    expect(raised.next).toBeGreaterThanOrEqual(Date.now() - 60_000)
  })

  it('refuses a batch that ends inside a row', () => {
    const row = sequenceRow('t', 'd', 1n)
    expect(() => { new StoredHeads().recordRows(row.subarray(0, row.length - 1)) }).toThrow(/ends early/)
  })
})
