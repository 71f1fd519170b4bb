/**
 * Intrusion detection at the data entry point: a burst of refusals from one
 * source (a device identity, or an address when no identity is known) within a
 * window raises one security event, stored for the tenant's administrators
 * (tenant '' = platform level, when the source could not be attributed).
 * The tallies are capped: a flood of distinct sources evicts the least
 * recently refused, never the one being refused now.
 */
import { makeRoom, touch } from '../capped-map.ts'

export interface SecurityEvent {
  tenant: string
  source: string
  reasons: Record<string, number>
  count: number
  firstMs: number
  lastMs: number
}

export interface BurstOptions {
  threshold: number
  windowMs: number
  /** Sources tallied at most; past it the least recently refused are dropped (counted in `evicted`). Default 50,000. */
  maxSources?: number
}

interface Tally { firstMs: number; count: number; reasons: Record<string, number>; raised: boolean }

export class BurstDetector {
  private readonly tallies = new Map<string, Tally>()
  private readonly maxSources: number
  private evictions = 0
  constructor (private readonly opts: BurstOptions, private readonly raise: (e: SecurityEvent) => void) {
    this.maxSources = opts.maxSources ?? 50_000
  }

  get size (): number { return this.tallies.size }
  /** Live tallies dropped at the cap. */
  get evicted (): number { return this.evictions }

  /** Counts one refusal; raises an event when the source crosses the threshold within its window (once per window). */
  note (tenant: string, source: string, reason: string, nowMs: number): void {
    const key = `${tenant}\0${source}`
    let t = this.tallies.get(key)
    if (t === undefined || nowMs - t.firstMs > this.opts.windowMs) {
      if (t === undefined) this.evictions += makeRoom(this.tallies, this.maxSources, (x) => nowMs - x.firstMs > this.opts.windowMs)
      t = { firstMs: nowMs, count: 0, reasons: {}, raised: false }
    }
    touch(this.tallies, key, t)
    t.count++
    t.reasons[reason] = (t.reasons[reason] ?? 0) + 1
    if (!t.raised && t.count >= this.opts.threshold) {
      t.raised = true
      this.raise({ tenant, source, reasons: { ...t.reasons }, count: t.count, firstMs: t.firstMs, lastMs: nowMs })
    }
  }
}
