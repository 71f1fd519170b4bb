/** The real-time alarm path inside the node: alarms go to a tenant's listeners the moment they are durable, never behind telemetry batches. */
import type { AlarmNotice } from '../decode/index.ts'
export { alarmNoticeJson } from '../decode/index.ts'
export type { AlarmNotice } from '../decode/index.ts'

/** How long a notice is kept for a stream that resumes: longer than an alarm takes from the log to ClickHouse. */
const RECENT_MS = 10 * 60_000
const RECENT_MAX = 2000

export class AlarmHub {
  private readonly listeners = new Map<string, Set<(a: AlarmNotice) => void>>()
  /** Per tenant, the notices of the last RECENT_MS, oldest first: durable in the log, maybe not queryable yet. */
  private readonly recentByTenant = new Map<string, AlarmNotice[]>()

  subscribe (tenant: string, listener: (a: AlarmNotice) => void): () => void {
    let set = this.listeners.get(tenant)
    if (set === undefined) { set = new Set(); this.listeners.set(tenant, set) }
    set.add(listener)
    return () => { set.delete(listener) }
  }

  publish (a: AlarmNotice): void {
    let recent = this.recentByTenant.get(a.tenant)
    if (recent === undefined) { recent = []; this.recentByTenant.set(a.tenant, recent) }
    recent.push(a)
    const cut = a.ingestedAtMs - RECENT_MS
    let drop = 0
    while (drop < recent.length && (recent[drop]!.ingestedAtMs < cut || recent.length - drop > RECENT_MAX)) drop++
    if (drop > 0) recent.splice(0, drop)
    for (const l of this.listeners.get(a.tenant) ?? []) l(a)
  }

  /** The tenant's notices taken in at or after `sinceMs` that are still kept (the last ten minutes). */
  recent (tenant: string, sinceMs: number): AlarmNotice[] {
    return (this.recentByTenant.get(tenant) ?? []).filter((a) => a.ingestedAtMs >= sinceMs)
  }
}
