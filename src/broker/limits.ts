/** Per-identity and per-source limits: publish rate, connections per tenant, back-off after failed authentication. */
import { makeRoom, touch } from '../capped-map.ts'

/** Token bucket: `rate` tokens per second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number
  private last: number
  constructor (private readonly rate: number, private readonly burst: number, now = performance.now()) {
    this.tokens = burst
    this.last = now
  }

  take (now = performance.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** True when the bucket would be full at `now`: dropping it and starting a new one loses nothing. */
  isFull (now = performance.now()): boolean {
    return this.tokens + ((now - this.last) / 1000) * this.rate >= this.burst
  }
}

/**
 * One token bucket per identity (tenant and device), shared by every
 * connection of that identity, so reconnecting does not refill it. Buckets
 * exist only for authenticated identities (so at most one per enrolled
 * device); a bucket no connection holds is dropped once it has refilled,
 * which is exact (a new bucket starts full). Sweeps run when the map has
 * doubled since the last one, so the cost is amortised O(1) per connect and
 * the map stays within twice the identities that are connected or were
 * limited in the last burst/rate seconds. It never holds more than
 * `maxIdentities` unheld buckets: past that the oldest unheld ones are dropped
 * (counted in `evicted`; such an identity starts again with a full bucket).
 */
export class IdentityBuckets {
  private readonly buckets = new Map<string, { bucket: TokenBucket; holders: number }>()
  private sweepAt: number
  private evictions = 0
  constructor (private readonly rate: number, private readonly burst: number, private readonly minSweep = 1024, private readonly maxIdentities = 200_000) {
    this.sweepAt = minSweep
  }

  /** The identity's bucket, held until `release` is called (once per acquire). */
  acquire (tenant: string, device: string, now = performance.now()): { bucket: TokenBucket; release: () => void } {
    const key = `${tenant}\0${device}`
    let e = this.buckets.get(key)
    if (e === undefined) {
      if (this.buckets.size >= this.sweepAt) this.sweep(now)
      this.evictions += makeRoom(this.buckets, this.maxIdentities, (x) => x.holders === 0 && x.bucket.isFull(now), (x) => x.holders === 0)
      e = { bucket: new TokenBucket(this.rate, this.burst, now), holders: 0 }
      this.buckets.set(key, e)
    }
    e.holders++
    const entry = e
    let released = false
    return { bucket: entry.bucket, release: () => { if (!released) { released = true; entry.holders-- } } }
  }

  get size (): number { return this.buckets.size }
  /** Unheld buckets not yet refilled, dropped at the cap. */
  get evicted (): number { return this.evictions }

  sweep (now = performance.now()): void {
    for (const [k, e] of this.buckets) if (e.holders === 0 && e.bucket.isFull(now)) this.buckets.delete(k)
    this.sweepAt = Math.max(this.minSweep, this.buckets.size * 2)
  }
}

interface SourceFailures { failures: number; until: number; last: number; pending: number; byUser: Map<string, number> }

/**
 * Exponential back-off of failed password checks per source address: after
 * `freeFailures` failures, each further attempt must wait 2^k seconds (capped
 * at `maxSeconds`), and attempts during the wait are refused without checking
 * credentials.
 *
 * What forgives failures, and what does not:
 * - time: a source with no failure for `maxSeconds` after its last failure
 *   (or its back-off, whichever ends later) starts clean;
 * - a correct password forgives only the failures of that same user name from
 *   that source (a device or person who mistyped their own secret), never
 *   failures against other identities: someone holding one valid secret, or
 *   sharing an address (NAT) with a valid device, cannot reset the back-off
 *   of a guessing run by logging in with it;
 * - a certificate (mutual-TLS) login forgives nothing: it proves nothing about
 *   the passwords tried from that address.
 * Per source at most `USERS_PER_SOURCE` user names are tracked one by one;
 * failures for further names count for the source and are never forgiven.
 * At most `maxSources` sources are tracked: past it the forgotten go first,
 * then those neither backing off nor being checked, then the least recently
 * failed (the last two counted in `evicted`); a source failing now is the
 * newest, so a flood of other addresses does not lift its back-off.
 *
 * A failure only counts once its check is done, so for a source that has
 * failed before, checks running at once are capped too: `begin` admits at
 * most as many as it has free failures left (at least one), otherwise
 * parallel attempts would all be checked however many failed. A source
 * without failures is not capped (a fleet behind one NAT reconnecting at
 * once must get in; the hasher's global queue bounds the cost), so one
 * address gets at most one such burst before its failures count. Each
 * admitted check is settled exactly once, by `fail`, `succeed` or `abandon`.
 */
export class AuthBackoff {
  static readonly USERS_PER_SOURCE = 8
  private readonly sources = new Map<string, SourceFailures>()
  private evictions = 0
  constructor (private readonly freeFailures: number, private readonly maxSeconds: number, private readonly maxSources = 100_000) {}

  /** Milliseconds the source must still wait; 0 = may try. */
  waitMs (source: string, now = Date.now()): number {
    const s = this.current(source, now)
    return s === undefined ? 0 : Math.max(0, s.until - now)
  }

  /**
   * Starts a credential check from `source`. `ok`: go ahead, then settle it once. Otherwise
   * `backoff` (the source failed too often: wait `waitMs`) or `busy` (it has failed before and
   * as many checks from it are running as it has free failures left; retry shortly).
   */
  begin (source: string, now = Date.now()): { ok: true } | { ok: false; reason: 'backoff' | 'busy'; waitMs: number } {
    const wait = this.waitMs(source, now)
    if (wait > 0) return { ok: false, reason: 'backoff', waitMs: wait }
    const s = this.current(source, now)
    const pending = s?.pending ?? 0
    const failures = s?.failures ?? 0
    if (failures > 0 && pending >= Math.max(1, this.freeFailures - failures)) return { ok: false, reason: 'busy', waitMs: 1000 }
    const rec = s ?? this.record(source, now)
    rec.pending = pending + 1
    return { ok: true }
  }

  /** A begun check that did not happen (the checker was busy): counts neither way. */
  abandon (source: string, now = Date.now()): void {
    const s = this.current(source, now)
    if (s === undefined) return
    this.settle(s)
    if (s.failures === 0 && s.pending === 0) this.sources.delete(source)
  }

  fail (source: string, user: string, now = Date.now()): void {
    const s = this.current(source, now) ?? this.record(source, now)
    this.settle(s)
    s.failures++
    s.last = now
    touch(this.sources, source, s)
    const name = user.slice(0, 64)
    const mine = s.byUser.get(name)
    if (mine !== undefined || s.byUser.size < AuthBackoff.USERS_PER_SOURCE) s.byUser.set(name, (mine ?? 0) + 1)
    const over = s.failures - this.freeFailures
    s.until = over > 0 ? now + Math.min(this.maxSeconds, 2 ** (over - 1)) * 1000 : 0
  }

  /** A correct password for `user` from `source`: forgets that user's failures from there, and only those. */
  succeed (source: string, user: string, now = Date.now()): void {
    const s = this.current(source, now)
    if (s === undefined) return
    this.settle(s)
    const name = user.slice(0, 64)
    const mine = s.byUser.get(name) ?? 0
    s.byUser.delete(name)
    s.failures -= mine
    if (s.failures <= 0 && s.pending === 0) this.sources.delete(source)
    else if (s.failures <= this.freeFailures) s.until = 0
  }

  get size (): number { return this.sources.size }
  /** Sources with failures or checks running, dropped at the cap. */
  get evicted (): number { return this.evictions }

  private record (source: string, now: number): SourceFailures {
    // those not backing off and not being checked go before those that are
    const forgotten = (x: SourceFailures): boolean => this.forgotten(x, now)
    this.evictions += makeRoom(this.sources, this.maxSources, forgotten, (x) => x.until < now && x.pending === 0)
    this.evictions += makeRoom(this.sources, this.maxSources, forgotten)
    const s: SourceFailures = { failures: 0, until: 0, last: now, pending: 0, byUser: new Map<string, number>() }
    this.sources.set(source, s)
    return s
  }

  private settle (s: SourceFailures): void { if (s.pending > 0) s.pending-- }

  /** The source's record, or undefined if it has none or it has been quiet long enough to be forgotten. */
  private current (source: string, now: number): SourceFailures | undefined {
    const s = this.sources.get(source)
    if (s === undefined) return undefined
    if (this.forgotten(s, now)) { this.sources.delete(source); return undefined }
    return s
  }

  private forgotten (s: SourceFailures, now: number): boolean {
    return s.pending === 0 && Math.max(s.last, s.until) + this.maxSeconds * 1000 < now
  }
}

/** Live connection counts per tenant. */
export class ConnectionCounter {
  private readonly counts = new Map<string, number>()
  constructor (readonly perTenant: number) {}
  tryAdd (tenant: string): boolean {
    const n = this.counts.get(tenant) ?? 0
    if (n >= this.perTenant) return false
    this.counts.set(tenant, n + 1)
    return true
  }

  remove (tenant: string): void {
    const n = (this.counts.get(tenant) ?? 1) - 1
    if (n <= 0) this.counts.delete(tenant)
    else this.counts.set(tenant, n)
  }

  get (tenant: string): number { return this.counts.get(tenant) ?? 0 }
  snapshot (): Record<string, number> { return Object.fromEntries(this.counts) }
}
