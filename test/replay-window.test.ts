import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ReplayWindow, WINDOW_SIZE } from '../src/crypto/index.ts'

/** Reference model: the set of accepted numbers and the highest one. */
class Model {
  seen = new Set<number>()
  high = -1
  check (s: number): boolean {
    return Number.isSafeInteger(s) && s >= 0 && !this.seen.has(s) && s > this.high - WINDOW_SIZE
  }

  accept (s: number): void { this.seen.add(s); this.high = Math.max(this.high, s) }
  forget (s: number): void { if (s > this.high - WINDOW_SIZE) this.seen.delete(s) }
}

describe('replay window', () => {
  it('accepts each sequence number at most once and nothing older than the window, like the reference model', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('near' as const), d: fc.integer({ min: -WINDOW_SIZE - 5, max: 40 }) }),
      fc.record({ kind: fc.constant('jump' as const), d: fc.integer({ min: WINDOW_SIZE - 3, max: 5 * WINDOW_SIZE }) }),
      fc.record({ kind: fc.constant('forget' as const), d: fc.integer({ min: -WINDOW_SIZE - 5, max: 5 }) }),
      fc.record({ kind: fc.constant('odd' as const), d: fc.constantFrom(-1, 0.5, Number.NaN, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2) }),
    )
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 10 * WINDOW_SIZE }), fc.array(op, { maxLength: 300 }), (base, ops) => {
      const w = new ReplayWindow()
      const m = new Model()
      for (const o of ops) {
        const s = o.kind === 'odd' ? o.d : Math.max(0, (m.high < 0 ? base : m.high) + o.d)
        if (o.kind === 'forget') { w.forget(s); m.forget(s); continue }
        const expected = m.check(s)
        expect(w.check(s)).toBe(expected)
        if (expected) { w.accept(s); m.accept(s) }
        expect(w.high).toBe(BigInt(m.high))
      }
    }), { numRuns: 300 })
  })

  it('lets a forgotten (never stored) sequence number through again', () => {
    const w = new ReplayWindow()
    for (const s of [10, 11, 12]) w.accept(s)
    expect(w.check(11)).toBe(false)
    w.forget(11)
    expect(w.check(11)).toBe(true)
    expect(w.check(12)).toBe(false)
  })
})
