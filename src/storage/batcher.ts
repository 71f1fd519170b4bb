/**
 * The one place rows leave for ClickHouse. Rows accumulate per table as
 * TabSeparated text and are flushed by size or age, one insert in flight per
 * table: while an insert runs, the next batch grows (group commit), so slower
 * storage means bigger, fewer inserts rather than a queue of small ones.
 * add() resolves when the batch holding the rows is stored, and rejects if
 * that insert fails; the broker holds the PUBACK on it.
 */
export interface BatcherOptions { maxRows: number; maxAgeMs: number }
export interface FlushReport { table: string; rows: number; bytes: number; ms: number; error?: unknown }

type InsertFn = (body: string) => Promise<void>

interface Pending {
  chunks: string[]
  rows: number
  bytes: number
  promise: Promise<void>
  resolve: () => void
  reject: (e: unknown) => void
}

function newPending (): Pending {
  let resolve!: () => void
  let reject!: (e: unknown) => void
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  promise.catch(() => {}) // rows nobody waits for (rejections) must not raise unhandled rejections
  return { chunks: [], rows: 0, bytes: 0, promise, resolve, reject }
}

export class TableBatcher {
  private pending: Pending = newPending()
  private timer: NodeJS.Timeout | null = null
  private inflight: Promise<void> | null = null
  private flushWanted = false

  constructor (
    readonly table: string,
    private readonly insert: InsertFn,
    private readonly opts: BatcherOptions,
    private readonly onFlush: (r: FlushReport) => void = () => {},
  ) {}

  get queuedRows (): number { return this.pending.rows }

  add (chunk: string, rows: number): Promise<void> {
    const p = this.pending
    p.chunks.push(chunk)
    p.rows += rows
    p.bytes += chunk.length
    if (p.rows >= this.opts.maxRows) this.flush()
    else if (this.timer === null) this.timer = setTimeout(() => { this.timer = null; this.flush() }, this.opts.maxAgeMs)
    return p.promise
  }

  /** Starts an insert of everything queued, or marks one as wanted after the insert in flight. */
  flush (): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    if (this.pending.rows === 0) return
    if (this.inflight !== null) { this.flushWanted = true; return }
    const batch = this.pending
    this.pending = newPending()
    const started = performance.now()
    const body = batch.chunks.join('')
    this.inflight = this.insert(body).then(
      () => {
        this.onFlush({ table: this.table, rows: batch.rows, bytes: batch.bytes, ms: performance.now() - started })
        batch.resolve()
      },
      (error: unknown) => {
        this.onFlush({ table: this.table, rows: batch.rows, bytes: batch.bytes, ms: performance.now() - started, error })
        batch.reject(error)
      },
    ).finally(() => {
      this.inflight = null
      if (this.flushWanted || this.pending.rows >= this.opts.maxRows) { this.flushWanted = false; this.flush() }
    })
  }

  /** Flushes until nothing is queued or in flight. Errors are reported through the batch promises. */
  async drain (): Promise<void> {
    for (;;) {
      this.flush()
      const inflight = this.inflight
      if (inflight === null) return
      await inflight
    }
  }
}
