/**
 * Time-limited sessions: an opaque bearer token, stored only as its hash, with
 * an idle and an absolute limit. At most `maxSessions` are held: past it the
 * least recently used are closed (counted in `evicted`).
 */
import { createHash, randomBytes } from 'node:crypto'
import { makeRoom, touch } from '../capped-map.ts'
import type { Principal } from '../registry/index.ts'

export interface SessionPolicy {
  idleMs: number
  absoluteMs: number
  /** Default 100,000. */
  maxSessions?: number
}

interface Session { principal: Principal; created: number; seen: number }

const digest = (token: string): string => createHash('sha256').update(token).digest('base64url')

export class Sessions {
  private readonly byHash = new Map<string, Session>()
  private evictions = 0
  constructor (private readonly policy: SessionPolicy) {}

  get size (): number { return this.byHash.size }
  /** Live sessions closed at the cap. */
  get evicted (): number { return this.evictions }

  open (principal: Principal, now = Date.now()): { token: string; expiresAt: number } {
    const token = randomBytes(32).toString('base64url')
    this.evictions += makeRoom(this.byHash, this.policy.maxSessions ?? 100_000, (s) => this.expired(s, now))
    this.byHash.set(digest(token), { principal, created: now, seen: now })
    return { token, expiresAt: Math.min(now + this.policy.idleMs, now + this.policy.absoluteMs) }
  }

  /** The session's principal, or null if unknown or expired (idle or absolute). Touches the idle timer. */
  check (token: string, now = Date.now()): Principal | null {
    const h = digest(token)
    const s = this.byHash.get(h)
    if (s === undefined) return null
    if (this.expired(s, now)) { this.byHash.delete(h); return null }
    s.seen = now
    touch(this.byHash, h, s)
    return s.principal
  }

  /** Whether the session still exists and is within its absolute limit; does not touch the idle timer (an open stream is no activity). */
  alive (token: string, now = Date.now()): boolean {
    const s = this.byHash.get(digest(token))
    return s !== undefined && now - s.created <= this.policy.absoluteMs
  }

  close (token: string): void { this.byHash.delete(digest(token)) }

  private expired (s: Session, now: number): boolean {
    return now - s.seen > this.policy.idleMs || now - s.created > this.policy.absoluteMs
  }
}
