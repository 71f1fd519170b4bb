/** Time-limited sessions: an opaque bearer token, stored only as its hash, with an idle and an absolute limit. */
import { createHash, randomBytes } from 'node:crypto'
import type { Principal } from '../registry/index.ts'

export interface SessionPolicy { idleMs: number; absoluteMs: number }

interface Session { principal: Principal; created: number; seen: number }

const digest = (token: string): string => createHash('sha256').update(token).digest('base64url')

export class Sessions {
  private readonly byHash = new Map<string, Session>()
  constructor (private readonly policy: SessionPolicy) {}

  open (principal: Principal, now = Date.now()): { token: string; expiresAt: number } {
    const token = randomBytes(32).toString('base64url')
    this.byHash.set(digest(token), { principal, created: now, seen: now })
    if (this.byHash.size > 100_000) this.prune(now)
    return { token, expiresAt: Math.min(now + this.policy.idleMs, now + this.policy.absoluteMs) }
  }

  /** The session's principal, or null if unknown or expired (idle or absolute). Touches the idle timer. */
  check (token: string, now = Date.now()): Principal | null {
    const h = digest(token)
    const s = this.byHash.get(h)
    if (s === undefined) return null
    if (now - s.seen > this.policy.idleMs || now - s.created > this.policy.absoluteMs) { this.byHash.delete(h); return null }
    s.seen = now
    return s.principal
  }

  /** Whether the session still exists and is within its absolute limit; does not touch the idle timer (an open stream is no activity). */
  alive (token: string, now = Date.now()): boolean {
    const s = this.byHash.get(digest(token))
    return s !== undefined && now - s.created <= this.policy.absoluteMs
  }

  close (token: string): void { this.byHash.delete(digest(token)) }

  private prune (now: number): void {
    for (const [h, s] of this.byHash) if (now - s.seen > this.policy.idleMs || now - s.created > this.policy.absoluteMs) this.byHash.delete(h)
  }
}
