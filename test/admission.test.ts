/**
 * Admission control's rules, as properties over random arrivals (fast-check):
 * storage is modelled by a backlog the test drains by hand, so every
 * interleaving of arrivals and storage progress can be generated. The node
 * test (test/overload.test.ts) drives the same class through real sockets.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AbandonedError, Admission, AdmissionBusyError } from '../src/pipeline/admission.ts'

interface Run { admitted: Array<{ tenant: string; id: number; rows: number }>; admission: Admission; storage: { rows: number; failing: boolean } }

function setup (bound: number, quantum: number): Run {
  const storage = { rows: 0, failing: false }
  const run: Run = { admitted: [], storage, admission: new Admission({ maxBacklogRows: bound, quantumRows: quantum, pollMs: 1e9, backlog: () => storage }) }
  return run
}

function offer (run: Run, tenant: string, id: number, rows: number): Promise<void> {
  return run.admission.admit(tenant, rows, async () => {
    run.admitted.push({ tenant, id, rows })
    run.storage.rows += rows
  })
}

const step = fc.oneof(
  fc.record({ kind: fc.constant('offer' as const), tenant: fc.constantFrom('a', 'b', 'c'), rows: fc.integer({ min: 1, max: 120 }) }),
  fc.record({ kind: fc.constant('drain' as const), rows: fc.integer({ min: 0, max: 400 }) }),
)

describe('admission', () => {
  it('admits every message exactly once, in order within its tenant, and waits only while storage is behind', async () => {
    await fc.assert(fc.asyncProperty(fc.array(step, { maxLength: 200 }), fc.integer({ min: 1, max: 500 }), async (steps, bound) => {
      const run = setup(bound, 100)
      const offered: Array<{ tenant: string; id: number }> = []
      const settled: Array<Promise<void>> = []
      for (const [id, s] of steps.entries()) {
        if (s.kind === 'offer') {
          const behind = run.storage.rows >= bound
          const before = run.admitted.length
          offered.push({ tenant: s.tenant, id })
          settled.push(offer(run, s.tenant, id, s.rows))
          // nobody waiting and storage keeping up: written at once
          if (!behind && run.admission.waiting === 0) expect(run.admitted.length).toBe(before + 1)
        } else {
          run.storage.rows = Math.max(0, run.storage.rows - s.rows)
          run.admission.pump()
        }
        // never lets anything through while storage is behind
        if (run.admission.waiting > 0) expect(run.storage.rows).toBeGreaterThanOrEqual(bound)
      }
      run.storage.rows = 0
      // storage catches up for good: everything waiting goes through
      while (run.admission.waiting > 0) { run.storage.rows = 0; run.admission.pump() }
      await Promise.all(settled)
      run.admission.close()
      expect(run.admitted.map((a) => a.id).sort((x, y) => x - y)).toEqual(offered.map((o) => o.id))
      for (const t of ['a', 'b', 'c']) {
        const mine = run.admitted.filter((a) => a.tenant === t).map((a) => a.id)
        expect(mine).toEqual([...mine].sort((x, y) => x - y))
      }
      expect(run.admission.shedding).toBe(false)
    }))
  })

  it('gives each waiting tenant its share: a burst of one tenant does not starve another', () => {
    fc.assert(fc.property(fc.integer({ min: 20, max: 400 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 100 }), (burst, others, rows) => {
      const quantum = 100
      const bound = 1000
      const run = setup(bound, quantum)
      run.storage.rows = bound // behind: everything waits
      for (let i = 0; i < burst; i++) void offer(run, 'burst', i, rows)
      for (let i = 0; i < others; i++) void offer(run, 'quiet', burst + i, rows)
      // storage takes a bound's worth at a time; while both tenants wait, their admitted rows stay within one round of each other
      while (run.admission.waiting > 0) {
        run.storage.rows = 0
        run.admission.pump()
        const waiting = run.admission.waitingByTenant()
        if ((waiting.get('quiet') ?? 0) > 0 && (waiting.get('burst') ?? 0) > 0) {
          const sum = (t: string): number => run.admitted.filter((a) => a.tenant === t).reduce((n, a) => n + a.rows, 0)
          expect(Math.abs(sum('burst') - sum('quiet'))).toBeLessThanOrEqual(quantum + rows)
        }
      }
      // the quiet tenant was through within its share: at most as many of the burst's rows went first as its own (plus a round)
      const lastQuiet = run.admitted.findLastIndex((a) => a.tenant === 'quiet')
      const burstFirst = run.admitted.slice(0, lastQuiet).filter((a) => a.tenant === 'burst').reduce((n, a) => n + a.rows, 0)
      expect(burstFirst).toBeLessThanOrEqual(others * rows + quantum + rows)
      run.admission.close()
    }))
  })

  it('lets everything through while storage is failing outright (the log buffers an outage up to its budget)', async () => {
    const run = setup(10, 100)
    run.storage.rows = 50
    const first = offer(run, 'a', 1, 5)
    expect(run.admission.waiting).toBe(1)
    run.storage.failing = true
    run.admission.pump()
    await first
    expect(run.admitted.map((a) => a.id)).toEqual([1])
    await offer(run, 'a', 2, 5)
    expect(run.admitted.map((a) => a.id)).toEqual([1, 2])
    run.admission.close()
  })

  it('refuses as busy (no PUBACK) beyond its most waiting messages, and reports the episode with its tenants', async () => {
    const events: unknown[] = []
    const storage = { rows: 100, failing: false }
    const admission = new Admission({ maxBacklogRows: 10, maxWaiting: 3, pollMs: 1e9, backlog: () => storage, onShedding: (e) => { events.push(e) } })
    const waits = ['t2', 't1', 't2'].map((t) => admission.admit(t, 1, async () => {}))
    await expect(admission.admit('t3', 1, async () => {})).rejects.toBeInstanceOf(AdmissionBusyError)
    storage.rows = 0
    admission.pump()
    await Promise.all(waits)
    admission.close()
    expect(events).toEqual([
      { shedding: true, backlogRows: 100 },
      { shedding: false, durationMs: expect.any(Number) as number, waited: 3, maxWaiting: 3, tenants: ['t1', 't2'] },
    ])
  })

  it('drops a waiting message whose connection closed, without writing it, so the device\'s resend is taken', async () => {
    const storage = { rows: 100, failing: false }
    const admission = new Admission({ maxBacklogRows: 10, pollMs: 1e9, backlog: () => storage })
    const written: string[] = []
    let open = true
    const gone = admission.admit('t', 1, async () => { written.push('gone') }, () => open)
    const kept = admission.admit('t', 1, async () => { written.push('kept') }, () => true)
    open = false
    storage.rows = 0
    admission.pump()
    await expect(gone).rejects.toBeInstanceOf(AbandonedError)
    await kept
    expect(written).toEqual(['kept'])
    expect(admission.abandoned).toBe(1)
    admission.close()
  })

  it('lets at most a slice through per turn of the event loop, and the rest in the next turns without being asked', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 400 }), async (slice, n) => {
      const storage = { rows: 100, failing: false }
      const admitted: number[] = []
      const admission = new Admission({ maxBacklogRows: 100, quantumRows: 3, slice, pollMs: 1e9, backlog: () => storage })
      const all = Array.from({ length: n }, (_, i) => admission.admit(i % 2 === 0 ? 'a' : 'b', 1, async () => { admitted.push(i) }))
      storage.rows = 0 // storage caught up, and stays so (these writes do not count against it)
      admission.pump()
      expect(admitted.length).toBe(Math.min(slice, n)) // one insert's room does not hold the event loop for all of them
      for (let turn = 0; admitted.length < n && turn < n; turn++) await new Promise((resolve) => setImmediate(resolve))
      await Promise.all(all)
      expect([...admitted].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i))
      for (const parity of [0, 1]) { const mine = admitted.filter((i) => i % 2 === parity); expect(mine).toEqual([...mine].sort((x, y) => x - y)) }
      expect(admission.shedding).toBe(false)
      admission.close()
    }), { numRuns: 50 })
  })
})
