/**
 * Intrusion detection at the data entry point: a burst of refusals from one
 * source (a device identity, or an address when no identity is known) within a
 * window raises one security event, stored for the tenant's administrators
 * (tenant '' = platform level, when the source could not be attributed).
 */
export interface SecurityEvent {
  tenant: string
  source: string
  reasons: Record<string, number>
  count: number
  firstMs: number
  lastMs: number
}

export interface BurstOptions { threshold: number; windowMs: number }

interface Tally { firstMs: number; count: number; reasons: Record<string, number>; raised: boolean }

export class BurstDetector {
  private readonly tallies = new Map<string, Tally>()
  constructor (private readonly opts: BurstOptions, private readonly raise: (e: SecurityEvent) => void) {}

  /** Counts one refusal; raises an event when the source crosses the threshold within its window (once per window). */
  note (tenant: string, source: string, reason: string, nowMs: number): void {
    const key = `${tenant}\0${source}`
    let t = this.tallies.get(key)
    if (t === undefined || nowMs - t.firstMs > this.opts.windowMs) {
      t = { firstMs: nowMs, count: 0, reasons: {}, raised: false }
      this.tallies.set(key, t)
      if (this.tallies.size > 50_000) this.prune(nowMs)
    }
    t.count++
    t.reasons[reason] = (t.reasons[reason] ?? 0) + 1
    if (!t.raised && t.count >= this.opts.threshold) {
      t.raised = true
      this.raise({ tenant, source, reasons: { ...t.reasons }, count: t.count, firstMs: t.firstMs, lastMs: nowMs })
    }
  }

  private prune (nowMs: number): void {
    for (const [k, t] of this.tallies) if (nowMs - t.firstMs > this.opts.windowMs) this.tallies.delete(k)
  }
}
