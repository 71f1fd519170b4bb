/**
 * Overload control for bulk telemetry (bracelet batches, spot measurements).
 *
 * When storage is behind — more bulk rows taken than stored than the bound —
 * a bulk message waits here, after it was authenticated and decoded and
 * before it is written to the log. Its PUBACK waits with it, and so does its
 * sender: aedes reads a connection's next chunk only once every packet of the
 * last one is settled (lib/client.js, nextBatch), so a waiting message stops
 * its socket being read and TCP pushes back to the device, which keeps its
 * data. Memory stays flat (what waits is at most a read chunk per
 * connection) and what is accepted is stored within the bound's time.
 *
 * Waiting messages are taken back tenant by tenant (deficit round robin over
 * rows), so one tenant's backfill burst gets its share, not the whole of
 * storage. Alarms and device status never come here (their own log lane).
 * While storage is failing outright (an outage, not slowness) nothing waits:
 * the log takes acknowledged data up to its budget, as documented.
 */
export interface AdmissionOptions {
  /** Bulk rows taken but not stored beyond which bulk messages wait (0: never). */
  maxBacklogRows: number
  /** Rows a tenant may take per round while others wait too. */
  quantumRows?: number
  /** How often waiting messages are looked at again while storage is behind (ms). */
  pollMs?: number
  /** Most messages that may wait at once; beyond it a message is refused as busy (a client that ignores back-pressure). */
  maxWaiting?: number
  /**
   * Most waiting messages let through in one turn of the event loop; the rest go in the next turns. One
   * insert can make room for thousands, and writing them in one go held the event loop 300-400 ms in
   * the soak (a CPU profile), while alarms and PUBACKs waited. 32 by default: a bracelet batch costs the
   * main thread ~0.3 ms, so a slice is ~10 ms, and the event loop turns hundreds of times a second.
   */
  slice?: number
  backlog: () => { rows: number; failing: boolean }
  /** Storage fell behind (bulk messages wait) or caught up; with the tenants that waited. */
  onShedding?: (e: SheddingEvent) => void
}

export type SheddingEvent =
  | { shedding: true; backlogRows: number }
  | { shedding: false; durationMs: number; waited: number; maxWaiting: number; tenants: string[] }

interface Waiting { rows: number; go: () => void }
interface TenantQueue { tenant: string; items: Waiting[]; head: number; deficit: number }

/** The sender's connection closed while its message waited: nothing was written, and its resend will be taken. */
export class AbandonedError extends Error {
  readonly code = 'ING_ERR_ABANDONED'
}

export class AdmissionBusyError extends Error {
  /** The storage back-pressure code: no PUBACK, and the device resends on reconnect. */
  readonly code = 'ING_ERR_BACKPRESSURE'
}

export class Admission {
  private readonly queues = new Map<string, TenantQueue>()
  /** Tenants with waiting messages, in round-robin order. */
  private ring: TenantQueue[] = []
  private turn = 0
  private waitingCount = 0
  private timer: NodeJS.Timeout | null = null
  private immediate: NodeJS.Immediate | null = null
  /** The tenant at `turn` has had its quantum this round and is still spending it (a slice ended mid-turn). */
  private granted = false
  private since: number | null = null
  private episode = { waited: 0, maxWaiting: 0, tenants: new Set<string>() }
  /** Messages that waited, per tenant, since start (a counter for /metrics). */
  readonly waitedByTenant = new Map<string, number>()
  /** Waiting messages dropped because their connection closed first (never written, never acknowledged). */
  abandoned = 0
  sheddingEpisodes = 0

  constructor (private readonly opts: AdmissionOptions) {}

  get waiting (): number { return this.waitingCount }
  get shedding (): boolean { return this.since !== null }

  /** Waiting messages per tenant now. */
  waitingByTenant (): Map<string, number> {
    const out = new Map<string, number>()
    for (const q of this.ring) out.set(q.tenant, q.items.length - q.head)
    return out
  }

  /** Runs `write` now if storage keeps up and nobody waits, else once this message's turn comes. */
  admit (tenant: string, rows: number, write: () => Promise<void>, connected?: () => boolean): Promise<void> {
    if (this.waitingCount === 0 && !this.behind()) return write()
    if (this.waitingCount >= (this.opts.maxWaiting ?? 100_000)) {
      return Promise.reject(new AdmissionBusyError('storage is behind and too many messages wait; retry later'))
    }
    return new Promise<void>((resolve, reject) => {
      let q = this.queues.get(tenant)
      if (q === undefined) {
        q = { tenant, items: [], head: 0, deficit: 0 }
        this.queues.set(tenant, q)
      }
      if (q.items.length === q.head) this.ring.push(q)
      q.items.push({
        rows,
        go: () => {
          if (connected === undefined || connected()) { write().then(resolve, reject); return }
          this.abandoned++
          reject(new AbandonedError('connection closed while the message waited for storage'))
        },
      })
      this.waitingCount++
      this.episode.waited++
      this.episode.tenants.add(tenant)
      this.waitedByTenant.set(tenant, (this.waitedByTenant.get(tenant) ?? 0) + 1)
      if (this.waitingCount > this.episode.maxWaiting) this.episode.maxWaiting = this.waitingCount
      if (this.since === null) {
        this.since = Date.now()
        this.sheddingEpisodes++
        this.opts.onShedding?.({ shedding: true, backlogRows: this.opts.backlog().rows })
      }
      this.schedule()
    })
  }

  /** Lets waiting messages through, tenant by tenant, while storage has room: at most a slice now, the rest in the next turns. */
  pump (): void {
    const quantum = this.opts.quantumRows ?? 500
    let budget = this.opts.slice ?? 32
    while (this.ring.length > 0 && !this.behind()) {
      if (budget === 0) { this.scheduleNext(); return }
      if (this.turn >= this.ring.length) { this.turn = 0; this.granted = false }
      const q = this.ring[this.turn]!
      if (!this.granted) { q.deficit += quantum; this.granted = true }
      while (q.head < q.items.length && q.items[q.head]!.rows <= q.deficit && !this.behind() && budget > 0) {
        const w = q.items[q.head]!
        q.items[q.head++] = undefined as unknown as Waiting
        q.deficit -= w.rows
        this.waitingCount--
        budget--
        w.go()
      }
      if (q.head === q.items.length) {
        // emptied: out of the ring, and no credit saved up for later
        q.items = []
        q.head = 0
        q.deficit = 0
        this.queues.delete(q.tenant)
        this.ring.splice(this.turn, 1)
        this.granted = false
      } else if (budget > 0 || q.items[q.head]!.rows > q.deficit) {
        // its quantum is spent (or storage is behind again): the next tenant's turn
        this.turn++
        this.granted = false
      }
    }
    if (this.ring.length === 0 && this.since !== null) {
      const e = this.episode
      this.opts.onShedding?.({ shedding: false, durationMs: Date.now() - this.since, waited: e.waited, maxWaiting: e.maxWaiting, tenants: [...e.tenants].sort() })
      this.since = null
      this.episode = { waited: 0, maxWaiting: 0, tenants: new Set() }
    }
    this.schedule()
  }

  close (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    if (this.immediate !== null) clearImmediate(this.immediate)
    this.timer = null
    this.immediate = null
  }

  private behind (): boolean {
    if (this.opts.maxBacklogRows <= 0) return false
    const b = this.opts.backlog()
    return !b.failing && b.rows >= this.opts.maxBacklogRows
  }

  /** The next slice, after the I/O that waited for this one. */
  private scheduleNext (): void {
    if (this.immediate !== null) return
    this.immediate = setImmediate(() => { this.immediate = null; this.pump() })
  }

  private schedule (): void {
    if (this.ring.length === 0 || this.timer !== null) return
    this.timer = setTimeout(() => { this.timer = null; this.pump() }, this.opts.pollMs ?? 5)
  }
}
