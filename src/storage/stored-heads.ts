/**
 * What is queryable, per device, kept in memory by the node that stores it: the highest sequence number
 * of each device's device_heads rows and when it was stored. GET /admin/tenants/:t/sequences answered
 * from device_heads cost embedded chDB ~20 ms a poll (a scan of the tenant's rows in every unmerged
 * part, on the requests connection, where the web app's reads waited behind it); the fleet simulator polls it
 * five times a second per tenant, and at a fleet's speed 1 those polls were two thirds of the time chDB
 * spent on statements (bench/RESULTS.md, issue 18). An embedded node is the only writer of its store,
 * so it knows every head it inserted: it records each device_heads batch once its insert returned
 * (when a read of the table would show it) and answers from here. It starts from the table (what an
 * earlier run stored). One entry per device that ever stored a message, as the table merges down to one
 * row per device. A ClickHouse server may hold other nodes' heads: there the table is read.
 */
import { readSequenceRows } from './row-binary.ts'
import { StorageError } from './row-binary-insert.ts'

interface Head { seq: bigint; atMs: number }

export interface HeadsAnswer { heads: Array<{ device: string; seq: number }>; next: number | undefined }

export class StoredHeads {
  private readonly byTenant = new Map<string, Map<string, Head>>()
  private lastMs = 0

  /** The time a head is stamped with: never earlier than one stamped before (a poll's cursor must not pass a later head). */
  private stamp (): number {
    this.lastMs = Math.max(this.lastMs, Date.now())
    return this.lastMs
  }

  /** A head as stored; a lower number than the device's head changes nothing (the answer is the highest). */
  record (tenant: string, device: string, seq: bigint, atMs: number = this.stamp()): void {
    let devices = this.byTenant.get(tenant)
    if (devices === undefined) { devices = new Map(); this.byTenant.set(tenant, devices) }
    const h = devices.get(device)
    if (h === undefined) devices.set(device, { seq, atMs })
    else if (seq > h.seq) { h.seq = seq; h.atMs = Math.max(h.atMs, atMs) }
    this.lastMs = Math.max(this.lastMs, atMs)
  }

  /** A device_heads batch as inserted (RowBinary: tenant, device, seq), stamped now. */
  recordRows (body: Buffer): void {
    const at = this.stamp()
    if (!readSequenceRows(body, (tenant, device, seq) => { this.record(tenant, device, seq, at) })) {
      throw new StorageError('ING_ERR_STORAGE', 'a heads row ends early')
    }
  }

  /**
   * The heads of a tenant's devices from `since` on; with `storedSinceMs`, only those stored from then on.
   * `next` is what to ask with next time: the newest stamp in the answer (a head stamped in the same
   * millisecond later is asked again, >=), or the same cursor when nothing is new.
   */
  since (tenant: string, since: number, storedSinceMs?: number): HeadsAnswer {
    const from = BigInt(Math.max(0, Math.trunc(since)))
    const heads: HeadsAnswer['heads'] = []
    let newest = -1
    for (const [device, h] of this.byTenant.get(tenant) ?? []) {
      if (h.seq < from || (storedSinceMs !== undefined && h.atMs < storedSinceMs)) continue
      heads.push({ device, seq: Number(h.seq) })
      if (h.atMs > newest) newest = h.atMs
    }
    return { heads, next: newest < 0 ? storedSinceMs : newest }
  }
}
