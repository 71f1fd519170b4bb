/**
 * The one place rows leave for ClickHouse. Rows accumulate per table as
 * RowBinary bytes and are flushed by size or age, one insert in flight per
 * table: while an insert runs, the next batch grows (group commit), so slower
 * storage means bigger, fewer inserts rather than a queue of small ones.
 *
 * Rows that came through the write-ahead log carry their LSN. Such a batch is
 * announced in the log before it is inserted (so a restart re-inserts exactly
 * it, under the same deduplication token), is retried with back-off until
 * storage takes it, and is checkpointed afterwards. Rows without an LSN
 * (refusals, security events) are inserted once; a failure is reported.
 */
import { backoffMs, type Backoff } from '../backoff.ts'

export interface BatcherOptions { maxRows: number; maxAgeMs: number }
export interface FlushReport { table: string; rows: number; bytes: number; ms: number; error?: unknown; attempt?: number }

export interface BatchLog {
  /** Makes the intent to insert first..last durable. */
  intent: (table: string, first: number, last: number) => Promise<void>
  /** first..last of this table are stored. */
  checkpoint: (table: string, last: number) => void
  /** Put before a batch's deduplication token: each log lane numbers its LSNs on its own. */
  tokenPrefix?: string
}

export type InsertFn = (body: Buffer, dedupToken: string | undefined) => Promise<void>

interface Batch {
  chunks: Buffer[]
  rows: number
  bytes: number
  first: number
  last: number
  /** What must be stored before this batch is inserted (VF_ACK_AFTER=store: a sequence row waits for its message's rows). */
  after: Array<Promise<unknown>>
  promise: Promise<void>
  resolve: () => void
  reject: (e: unknown) => void
}

function newBatch (): Batch {
  let resolve!: () => void
  let reject!: (e: unknown) => void
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  promise.catch(() => {}) // rows nobody waits for must not raise unhandled rejections
  return { chunks: [], rows: 0, bytes: 0, first: 0, last: 0, after: [], promise, resolve, reject }
}

const RETRY: Backoff = { baseMs: 100, maxMs: 5000 }

export class TableBatcher {
  private pending: Batch = newBatch()
  private timer: NodeJS.Timeout | null = null
  private inflight: Promise<void> | null = null
  private flushWanted = false
  private stopped = false

  constructor (
    readonly table: string,
    private readonly insert: InsertFn,
    private readonly opts: BatcherOptions,
    private readonly onFlush: (r: FlushReport) => void = () => {},
    private readonly log: BatchLog | null = null,
  ) {}

  get queuedRows (): number { return this.pending.rows }

  /**
   * Queues rows (with the LSN they have in the write-ahead log, if any); resolves once they are stored.
   * `after`: their batch is not inserted before this has settled (rows of other tables they describe).
   */
  add (chunk: Buffer, rows: number, lsn = 0, after?: Promise<unknown>): Promise<void> {
    const p = this.pending
    if (after !== undefined && p.after.at(-1) !== after) p.after.push(after)
    p.chunks.push(chunk)
    p.rows += rows
    p.bytes += chunk.length
    if (lsn > 0) {
      if (p.first === 0) p.first = lsn
      p.last = lsn
    }
    if (p.rows >= this.opts.maxRows) this.flush()
    else if (this.timer === null) this.timer = setTimeout(() => { this.timer = null; this.flush() }, this.opts.maxAgeMs)
    return p.promise
  }

  /**
   * Inserts a batch recovered from the log exactly as it was announced before a restart; `tokenPrefix`,
   * when given, is the one it was announced under (a log of an earlier version: src/storage/wal-id.ts).
   */
  replay (chunks: Buffer[], rows: number, first: number, last: number, tokenPrefix?: string): Promise<void> {
    const b = newBatch()
    Object.assign(b, { chunks, rows, bytes: chunks.reduce((n, c) => n + c.length, 0), first, last })
    const run = async (): Promise<void> => {
      while (this.inflight !== null) await this.inflight
      this.inflight = this.ship(b, true, tokenPrefix).finally(() => { this.inflight = null })
      await this.inflight
    }
    return run()
  }

  /** Starts an insert of everything queued, or marks one as wanted after the insert in flight. */
  flush (): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    if (this.pending.rows === 0 || this.stopped) return
    if (this.inflight !== null) { this.flushWanted = true; return }
    const batch = this.pending
    this.pending = newBatch()
    this.inflight = this.ship(batch, false).finally(() => {
      this.inflight = null
      if (this.flushWanted || this.pending.rows >= this.opts.maxRows) { this.flushWanted = false; this.flush() }
    })
  }

  private async ship (batch: Batch, announced: boolean, tokenPrefix = this.log?.tokenPrefix ?? ''): Promise<void> {
    const logged = this.log !== null && batch.first > 0
    const token = logged ? `${tokenPrefix}${this.table}:${batch.first}-${batch.last}` : undefined
    if (batch.after.length > 0) await Promise.allSettled(batch.after)
    const body = batch.chunks.length === 1 ? batch.chunks[0]! : Buffer.concat(batch.chunks, batch.bytes)
    for (let attempt = 1; ; attempt++) {
      const started = performance.now()
      try {
        if (logged && !announced) { await this.log.intent(this.table, batch.first, batch.last); announced = true }
        await this.insert(body, token)
        this.onFlush({ table: this.table, rows: batch.rows, bytes: batch.bytes, ms: performance.now() - started, attempt })
        if (logged) this.log.checkpoint(this.table, batch.last)
        batch.resolve()
        return
      } catch (error) {
        this.onFlush({ table: this.table, rows: batch.rows, bytes: batch.bytes, ms: performance.now() - started, error, attempt })
        // logged rows were acknowledged: keep trying (a restart would replay them from the log anyway)
        if (!logged || this.stopped) { batch.reject(error); return }
        await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt, RETRY)))
      }
    }
  }

  /** Flushes until nothing is queued or in flight. */
  async drain (): Promise<void> {
    for (;;) {
      this.flush()
      const inflight = this.inflight
      if (inflight === null) return
      await inflight
    }
  }

  /** Stops retrying: a batch that cannot be stored now stays in the log for the next start. */
  stop (): void { this.stopped = true }
}
