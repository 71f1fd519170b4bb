/**
 * The batcher's flushing rules. Pure logic: the insert is a function the test
 * controls (ClickHouse itself is exercised by the end-to-end tests).
 */
import { describe, expect, it } from 'vitest'
import { TableBatcher } from '../src/storage/index.ts'
import { batchOptions } from '../src/storage/batch-policy.ts'

const B = (s: string): Buffer => Buffer.from(s, 'utf8')

function controlledInsert () {
  const calls: Array<{ body: string; resolve: () => void; reject: (e: Error) => void }> = []
  let inflight = 0
  let maxInflight = 0
  const insert = (bytes: Buffer): Promise<void> => new Promise<void>((resolve, reject) => {
    inflight++
    maxInflight = Math.max(maxInflight, inflight)
    calls.push({ body: bytes.toString(), resolve: () => { inflight--; resolve() }, reject: (e) => { inflight--; reject(e) } })
  })
  return { calls, insert, maxInflight: () => maxInflight }
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms))

describe('table batcher', () => {
  it('resolves adds only when their insert is stored; one insert in flight; rows added meanwhile go to the next insert', async () => {
    const c = controlledInsert()
    const b = new TableBatcher('t', c.insert, { maxRows: 1000, maxAgeMs: 5 })
    const settled: string[] = []
    void b.add(B('a\n'), 1).then(() => settled.push('a'))
    void b.add(B('b\n'), 1).then(() => settled.push('b'))
    await tick(20)
    expect(c.calls.map((x) => x.body)).toEqual(['a\nb\n'])
    void b.add(B('c\n'), 1).then(() => settled.push('c'))
    await tick(20)
    expect(c.calls).toHaveLength(1) // c waits for the insert in flight
    expect(settled).toEqual([])
    c.calls[0]!.resolve()
    await tick(20)
    expect(settled).toEqual(['a', 'b'])
    expect(c.calls.map((x) => x.body)).toEqual(['a\nb\n', 'c\n'])
    c.calls[1]!.resolve()
    await tick()
    expect(settled).toEqual(['a', 'b', 'c'])
    expect(c.maxInflight()).toBe(1)
  })

  it('a failed insert rejects exactly its own rows; later batches still work', async () => {
    const c = controlledInsert()
    const b = new TableBatcher('t', c.insert, { maxRows: 2, maxAgeMs: 1000 })
    const first = Promise.allSettled([b.add(B('a\n'), 1), b.add(B('b\n'), 1)]) // size flush, no waiting for age
    await tick()
    expect(c.calls).toHaveLength(1)
    c.calls[0]!.reject(new Error('storage down'))
    expect((await first).map((r) => r.status)).toEqual(['rejected', 'rejected'])
    const second = b.add(B('c\n'), 2)
    await tick()
    c.calls[1]!.resolve()
    await expect(second).resolves.toBeUndefined()
  })

  it('drain() inserts every queued row, in order', async () => {
    const bodies: string[] = []
    const b = new TableBatcher('t', async (body) => { bodies.push(body.toString()); await tick(1) }, { maxRows: 3, maxAgeMs: 10_000 })
    const chunks = Array.from({ length: 20 }, (_, i) => `${i}\n`)
    const adds = chunks.map((ch) => b.add(B(ch), 1))
    await b.drain()
    await Promise.all(adds)
    expect(bodies.join('')).toBe(chunks.join(''))
    expect(b.queuedRows).toBe(0)
  })
})

describe('batch ages per table', () => {
  it('bracelet samples wait at least 500 ms for company unless a PUBACK waits for their insert; a longer configured age is kept', () => {
    const configured = { maxRows: 50_000, maxAgeMs: 200 }
    expect(batchOptions('vital_samples', configured).maxAgeMs).toBe(500)
    expect(batchOptions('vital_samples', configured, 'store').maxAgeMs).toBe(200)
    expect(batchOptions('vital_samples', { ...configured, maxAgeMs: 1000 }).maxAgeMs).toBe(1000)
    // the one-row-per-message tables keep their floors in both modes
    expect(batchOptions('spot_measurements', configured, 'store').maxAgeMs).toBe(1000)
    expect(batchOptions('alarm_events', configured).maxAgeMs).toBe(250)
    expect(batchOptions('vital_samples', configured).maxRows).toBe(50_000)
  })
})
