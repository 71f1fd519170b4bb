/**
 * The fleet as operators watch it: per device when it was last heard from, its
 * last reported battery and firmware, and when its client certificate expires.
 * Kept in memory (updated by the ingest path as messages are accepted, and by
 * certificate issuance and mutual-TLS logins) so the fleet view of 200,000
 * devices never scans telemetry. Written to `device_presence` every few seconds
 * (only what changed, one insert) and read back at start; a crash loses at most
 * that much of "last seen", never data. Holds device ids and device facts only,
 * no patient id and no health value.
 */
import { RowWriter, type Storage } from '../storage/index.ts'

export interface Presence {
  tenant: string
  lastSeenMs: number | null
  batteryPercent: number | null
  firmware: string | null
  statusAtMs: number | null
  certNotAfterMs: number | null
}

export interface PresenceStore {
  seen: (tenant: string, device: string, nowMs: number) => void
  status: (tenant: string, device: string, s: { batteryPercent: number; firmware: string; reportedAtMs: number }, nowMs: number) => void
  certificate: (tenant: string, device: string, notAfterMs: number) => void
  get: (device: string) => Presence | undefined
  /** Writes what changed since the last flush (one insert). */
  flush: () => Promise<void>
  close: () => Promise<void>
}

/** `device_presence` rows in RowBinary, in OTHER_COLUMNS' order (row-binary-insert.ts), all stamped `updatedAtMs`. */
export function presenceRows (entries: ReadonlyArray<readonly [string, Presence]>, updatedAtMs: number): Buffer {
  const w = new RowWriter(Math.max(1024, entries.length * 64))
  for (const [device, p] of entries) {
    w.string(p.tenant)
    w.string(device)
    w.nullableTime(p.lastSeenMs)
    if (p.batteryPercent === null) w.u8(1)
    else { w.u8(0); w.u8(p.batteryPercent) }
    w.string(p.firmware ?? '')
    w.nullableTime(p.statusAtMs)
    w.nullableTime(p.certNotAfterMs)
    w.time(updatedAtMs)
  }
  return w.take()
}

export async function loadPresence (storage: Storage, opts: { flushMs: number; onError: (err: unknown) => void }): Promise<PresenceStore> {
  const { client, table } = storage.conn
  const byDevice = new Map<string, Presence>()
  const rs = await client.query({
    query: `SELECT tenant_id, device_id, toUnixTimestamp64Milli(last_seen) AS last_seen, battery, firmware, toUnixTimestamp64Milli(status_at) AS status_at,
      toUnixTimestamp64Milli(cert_not_after) AS cert_not_after FROM ${table('device_presence')} FINAL`,
    format: 'JSONEachRow',
  })
  const num = (v: unknown): number | null => v === null || v === undefined ? null : Number(v)
  for (const r of await rs.json<Record<string, unknown>>()) {
    byDevice.set(String(r['device_id']), {
      tenant: String(r['tenant_id']), lastSeenMs: num(r['last_seen']), batteryPercent: num(r['battery']),
      firmware: r['firmware'] === '' ? null : String(r['firmware']), statusAtMs: num(r['status_at']), certNotAfterMs: num(r['cert_not_after']),
    })
  }
  const dirty = new Set<string>()
  const entry = (tenant: string, device: string): Presence => {
    let p = byDevice.get(device)
    if (p === undefined || p.tenant !== tenant) {
      p = { tenant, lastSeenMs: null, batteryPercent: null, firmware: null, statusAtMs: null, certNotAfterMs: null }
      byDevice.set(device, p)
    }
    dirty.add(device)
    return p
  }
  let flushing: Promise<void> = Promise.resolve()
  const flush = async (): Promise<void> => {
    await flushing
    if (dirty.size === 0) return
    const now = Date.now()
    const devices = [...dirty]
    const rows = presenceRows(devices.map((d) => [d, byDevice.get(d)!]), now)
    dirty.clear()
    flushing = storage.insertPresence(rows).then(() => {}, (err: unknown) => {
      // kept for the next flush: the in-memory view is still right
      for (const d of devices) dirty.add(d)
      opts.onError(err)
    })
    await flushing
  }
  const timer = setInterval(() => { void flush() }, opts.flushMs).unref()
  return {
    seen: (tenant, device, nowMs) => {
      const p = entry(tenant, device)
      if (p.lastSeenMs === null || nowMs > p.lastSeenMs) p.lastSeenMs = nowMs
    },
    status: (tenant, device, s, nowMs) => {
      const p = entry(tenant, device)
      if (p.lastSeenMs === null || nowMs > p.lastSeenMs) p.lastSeenMs = nowMs
      // a backlog synced late does not overwrite a newer report
      if (p.statusAtMs === null || s.reportedAtMs >= p.statusAtMs) {
        p.statusAtMs = s.reportedAtMs
        p.batteryPercent = s.batteryPercent
        p.firmware = s.firmware
      }
    },
    certificate: (tenant, device, notAfterMs) => { entry(tenant, device).certNotAfterMs = notAfterMs },
    get: (device) => byDevice.get(device),
    flush,
    close: async () => {
      clearInterval(timer)
      await flush()
    },
  }
}
