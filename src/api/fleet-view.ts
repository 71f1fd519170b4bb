/**
 * The fleet view: every enrolled device of a tenant with what operators watch
 * (family, binding, gateway, last seen, battery, firmware, payload key,
 * certificate expiry), filtered and paged, from memory only (the registry and
 * the presence store): cheap enough to poll every few seconds at 200,000
 * devices, and never a scan of the telemetry. Pages follow device id order; a
 * page's `next` is the id to continue after.
 */
import { z } from 'zod'
import { FAMILIES, type DeviceRecord, type PresenceStore, type Registry } from '../registry/index.ts'
import { id } from './schemas.ts'

const HOUR = 3_600_000
const DAY = 86_400_000

export const FleetQuery = z.object({
  family: z.enum(FAMILIES).optional(),
  /** Not heard from for at least this many hours (a device never seen counts). */
  notSeenHours: z.coerce.number().min(0).max(24 * 3650).optional(),
  /** Last reported battery below this percentage. */
  batteryBelow: z.coerce.number().int().min(1).max(101).optional(),
  /** Client certificate expiring within this many days (or expired). */
  certExpiringDays: z.coerce.number().int().min(0).max(3650).optional(),
  after: id.optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
})
export type FleetQuery = z.output<typeof FleetQuery>

export interface FleetDevice {
  device: string
  family: string
  /** The current binding (the admin view only; the clinician view says whether there is one). */
  patient?: string | null
  bound: boolean
  gateway: string | null
  lastSeenAt: number | null
  battery: number | null
  firmware: string | null
  lastStatusAt: number | null
  /** The newest payload key. */
  keyId: number
  certificateNotAfter: number | null
  /** When it was revoked; null while in service. */
  revokedAt: number | null
}

export interface FleetPage { devices: FleetDevice[]; next: string | null; total: number }

export interface FleetView { page: (tenant: string, q: FleetQuery, opts: { withPatient: boolean; nowMs?: number }) => FleetPage }

export function createFleetView (registry: Registry, presence: PresenceStore): FleetView {
  // each tenant's device ids in order, sorted again only when a device was enrolled (ids are never removed)
  const sorted = new Map<string, { ids: string[]; records: Map<string, DeviceRecord> }>()
  const idsOf = (tenant: string): { ids: string[]; records: Map<string, DeviceRecord> } => {
    const list = registry.listDevices(tenant)
    let cached = sorted.get(tenant)
    if (cached === undefined || cached.ids.length !== list.length) {
      const records = new Map(list.map((d) => [d.device as string, d]))
      cached = { ids: [...records.keys()].sort(), records }
      sorted.set(tenant, cached)
    }
    return cached
  }
  /** The first index whose id sorts after `after`. */
  const startAfter = (ids: string[], after: string | undefined): number => {
    if (after === undefined) return 0
    let lo = 0
    let hi = ids.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (ids[mid]! <= after) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  return {
    page (tenant, q, opts) {
      const now = opts.nowMs ?? Date.now()
      const { ids, records } = idsOf(tenant)
      const out: FleetDevice[] = []
      let i = startAfter(ids, q.after)
      for (; i < ids.length && out.length < q.limit; i++) {
        const d = records.get(ids[i]!)!
        const p = presence.get(d.device)
        const seen = p?.tenant === tenant ? p : undefined
        if (q.family !== undefined && d.family !== q.family) continue
        if (q.notSeenHours !== undefined && seen?.lastSeenMs != null && seen.lastSeenMs > now - q.notSeenHours * HOUR) continue
        if (q.batteryBelow !== undefined && (seen?.batteryPercent == null || seen.batteryPercent >= q.batteryBelow)) continue
        if (q.certExpiringDays !== undefined && (seen?.certNotAfterMs == null || seen.certNotAfterMs > now + q.certExpiringDays * DAY)) continue
        out.push({
          device: d.device, family: d.family, ...(opts.withPatient ? { patient: d.patient } : {}), bound: d.patient !== null, gateway: d.gateway,
          lastSeenAt: seen?.lastSeenMs ?? null, battery: seen?.batteryPercent ?? null, firmware: seen?.firmware ?? null, lastStatusAt: seen?.statusAtMs ?? null,
          keyId: Math.max(...d.keys.keys()), certificateNotAfter: seen?.certNotAfterMs ?? null, revokedAt: d.revokedAtMs,
        })
      }
      return { devices: out, next: i < ids.length && out.length === q.limit ? out.at(-1)!.device : null, total: ids.length }
    },
  }
}
