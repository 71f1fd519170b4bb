/**
 * Maps keyed by what outsiders choose stay bounded under a flood of distinct
 * live keys (100,000 sources, identities, sessions), count what they evict,
 * and keep doing their job for the key that matters: a source still refusing,
 * a session still in use, an identity still limited.
 */
import { describe, expect, it } from 'vitest'
import { AuthBackoff, IdentityBuckets } from '../src/broker/index.ts'
import { Sessions } from '../src/api/index.ts'
import { BurstDetector, type SecurityEvent } from '../src/pipeline/security-events.ts'

const FLOOD = 100_000
const CAP = 1000

describe('bounded maps under a flood of live keys', () => {
  it('burst detector: tallies stay within the cap, evictions are counted, a source refused throughout still raises its event', () => {
    const events: SecurityEvent[] = []
    const d = new BurstDetector({ threshold: 250, windowMs: 60_000, maxSources: CAP }, (e) => events.push(e))
    // every key is live: all within one window; the guessing device is refused every 500 flood entries
    for (let i = 0; i < FLOOD; i++) {
      d.note('t', `addr:flood-${i}`, 'ING_ERR_AUTH', 1000 + i / 100)
      if (i % 500 === 0) d.note('t', 'dev-guessing', 'ING_ERR_DECRYPT', 1000 + i / 100)
      expect(d.size).toBeLessThanOrEqual(CAP)
    }
    expect(d.evicted).toBeGreaterThanOrEqual(FLOOD - CAP)
    expect(events).toEqual([])
    // its tally survived the flood: 200 so far, 50 more reach the threshold and raise exactly one event
    for (let i = 0; i < 50; i++) d.note('t', 'dev-guessing', 'ING_ERR_DECRYPT', 2000)
    expect(events.map((e) => [e.source, e.count])).toEqual([['dev-guessing', 250]])
  })

  it('burst detector below its cap evicts nothing', () => {
    const events: SecurityEvent[] = []
    const d = new BurstDetector({ threshold: 3, windowMs: 60_000, maxSources: CAP }, (e) => events.push(e))
    d.note('t', 'first', 'ING_ERR_AUTH', 0)
    for (let i = 0; i < CAP - 2; i++) d.note('t', `s${i}`, 'ING_ERR_AUTH', 1)
    d.note('t', 'first', 'ING_ERR_AUTH', 2)
    d.note('t', 'first', 'ING_ERR_AUTH', 3)
    expect(d.evicted).toBe(0)
    expect(events.map((e) => e.source)).toEqual(['first'])
  })

  it('sessions: at most the cap are held, evictions are counted, a session in use survives the flood', () => {
    const s = new Sessions({ idleMs: 3_600_000, absoluteMs: 86_400_000, maxSessions: CAP })
    const principal = { tenant: 't', user: 'u', role: 'clinician' as const }
    const mine = s.open(principal, 0).token
    let last = ''
    for (let i = 0; i < FLOOD; i++) {
      last = s.open({ ...principal, user: `f${i}` }, 1 + i / 1000).token
      // the user keeps working: each request touches the session
      if (i % 100 === 0) expect(s.check(mine, 1 + i / 1000)).toEqual(principal)
      expect(s.size).toBeLessThanOrEqual(CAP)
    }
    expect(s.evicted).toBeGreaterThanOrEqual(FLOOD + 1 - CAP)
    expect(s.check(mine, 200)).toEqual(principal)
    expect(s.check(last, 200)?.user).toBe(`f${FLOOD - 1}`)
  })

  it('sessions below the cap: the oldest live session stays valid and nothing is evicted', () => {
    const s = new Sessions({ idleMs: 3_600_000, absoluteMs: 86_400_000, maxSessions: CAP })
    const first = s.open({ tenant: 't', user: 'first', role: 'clinician' }, 0).token
    for (let i = 0; i < CAP - 1; i++) s.open({ tenant: 't', user: `u${i}`, role: 'clinician' }, 1)
    expect(s.size).toBe(CAP)
    expect(s.evicted).toBe(0)
    expect(s.check(first, 2)?.user).toBe('first')
  })

  it('auth back-off: sources stay within the cap, evictions are counted, a source still guessing stays backed off', () => {
    const b = new AuthBackoff(5, 300, CAP)
    const guess = (source: string, now: number): void => { b.fail(source, 'dev', now) }
    for (let k = 0; k < 8; k++) guess('10.0.0.1', 0)
    expect(b.begin('10.0.0.1', 0)).toMatchObject({ ok: false, reason: 'backoff' })
    for (let i = 0; i < FLOOD; i++) {
      // every flooding address is backing off too (live), and the guesser keeps failing
      for (let k = 0; k < 6; k++) guess(`flood-${i}`, 1)
      if (i % 500 === 0) guess('10.0.0.1', 1)
      expect(b.size).toBeLessThanOrEqual(CAP)
    }
    expect(b.evicted).toBeGreaterThanOrEqual(FLOOD - CAP)
    expect(b.begin('10.0.0.1', 2)).toMatchObject({ ok: false, reason: 'backoff' })
  })

  it('auth back-off: single failures from a flood of addresses are dropped before a source that is backing off', () => {
    const b = new AuthBackoff(5, 300, CAP)
    for (let k = 0; k < 8; k++) b.fail('10.0.0.1', 'dev', 0)
    for (let i = 0; i < FLOOD; i++) b.fail(`flood-${i}`, 'dev', 1)
    expect(b.size).toBeLessThanOrEqual(CAP)
    expect(b.evicted).toBeGreaterThan(0)
    expect(b.waitMs('10.0.0.1', 2)).toBeGreaterThan(0)
  })

  it('identity buckets: unheld buckets stay within the cap, evictions are counted, a held or recent identity stays limited', () => {
    const b = new IdentityBuckets(1, 3, 1024, CAP)
    const held = b.acquire('t', 'held', 0)
    for (let i = 0; i < 3; i++) held.bucket.take(0)
    for (let i = 0; i < FLOOD; i++) {
      // each identity connects, spends its burst and goes: its bucket is live (not refilled) until rate × burst seconds pass
      const a = b.acquire('t', `d${i}`, 1)
      for (let k = 0; k < 3; k++) a.bucket.take(1)
      a.release()
      expect(b.size).toBeLessThanOrEqual(CAP)
    }
    expect(b.evicted).toBeGreaterThanOrEqual(FLOOD - CAP)
    // the held bucket was never dropped: still the same, still empty
    expect(b.acquire('t', 'held', 2).bucket).toBe(held.bucket)
    expect(held.bucket.take(2)).toBe(false)
    // the most recent identity reconnecting gets its spent bucket back, not a full one
    expect(b.acquire('t', `d${FLOOD - 1}`, 2).bucket.take(2)).toBe(false)
  })
})
