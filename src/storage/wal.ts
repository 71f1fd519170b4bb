/**
 * Write-ahead log: accepted rows are appended here and fsync'd (group commit:
 * every append waiting at the same moment shares one fdatasync) before the
 * broker may PUBACK. The batcher ships from memory to ClickHouse and records
 * what is stored in a checkpoint; on start, whatever the checkpoint does not
 * cover is read back and shipped again.
 *
 * Segment files DATA_DIR/wal/<first lsn>.wal hold records:
 *   u32 body length | u32 crc32(body) | body
 *   body = u8 type | u48 lsn | u8 table name length | table name | rest
 *   DATA   (1): rest = u32 rows | RowBinary rows
 *   INTENT (2): rest = u48 first lsn | u48 last lsn — a batch about to be inserted, so
 *               a restart re-inserts exactly that batch under the same deduplication token
 * A record whose length or checksum does not hold ends its segment: a torn
 * tail from a crash was never acknowledged, so nothing acknowledged is lost.
 *
 * Segments are opened O_DSYNC, so a group commit is one write that returns
 * once the data is on disk: one trip through libuv's thread pool instead of a
 * write and then an fdatasync, each of which waits for the event loop to come
 * round again under load (measured: 11.5 + 8.4 ms per commit at 15k msgs/s,
 * against 0.5 ms for the fdatasync itself). The checkpoint is written off the
 * event loop too, and segments are deleted only once a durable checkpoint
 * covers them.
 */
import { constants, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs'
import { open, rename, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'

const DATA = 1
const INTENT = 2
const HEAD = 8
const SEGMENT_NAME = /^\d{16}\.wal$/

export interface WalRecord { lsn: number; table: string; rows: number; chunk: Buffer }
export interface WalIntent { lsn: number; table: string; first: number; last: number }

export interface Recovered {
  /** Per table, in LSN order: data records not yet covered by the checkpoint. */
  records: Map<string, WalRecord[]>
  /** Per table: batches that may have reached storage, to re-insert under the same token. */
  intents: Map<string, WalIntent[]>
  /** Bytes dropped from torn or corrupt tails. */
  discardedBytes: number
}

export interface WalOptions {
  segmentBytes: number
  /** Called after each group commit: seconds for the (O_DSYNC) write, bytes written, appends it covered. */
  onSync?: (seconds: number, bytes: number, appends: number) => void
  /** A checkpoint could not be written (the log keeps its segments; nothing acknowledged is lost). */
  onCheckpointError?: (err: unknown) => void
}

interface Segment { path: string; bytes: number; maxByTable: Map<string, number> }

/** One record, written into a single buffer (the chunk is copied once). */
function encode (type: number, lsn: number, table: string, ...rest: Buffer[]): Buffer {
  const nameLen = Buffer.byteLength(table, 'latin1')
  const bodyLen = 1 + 6 + 1 + nameLen + rest.reduce((n, r) => n + r.length, 0)
  const out = Buffer.allocUnsafe(HEAD + bodyLen)
  out.writeUInt32LE(bodyLen, 0)
  out[HEAD] = type
  out.writeUIntLE(lsn, HEAD + 1, 6)
  out[HEAD + 7] = nameLen
  let o = HEAD + 8 + out.write(table, HEAD + 8, 'latin1')
  for (const r of rest) o += r.copy(out, o)
  out.writeUInt32LE(crc32(out.subarray(HEAD)), 4)
  return out
}

/** Parses a segment's bytes; returns the records and the length of the valid prefix. */
export function parseSegment (buf: Buffer): { records: Array<WalRecord | (WalIntent & { type: 'intent' })>; valid: number } {
  const records: Array<WalRecord | (WalIntent & { type: 'intent' })> = []
  let o = 0
  while (o + HEAD <= buf.length) {
    const len = buf.readUInt32LE(o)
    if (len < 8 || o + HEAD + len > buf.length) break
    const body = buf.subarray(o + HEAD, o + HEAD + len)
    if (crc32(body) !== buf.readUInt32LE(o + 4)) break
    const type = body[0]
    const lsn = body.readUIntLE(1, 6)
    const nameLen = body[7]!
    const table = body.toString('latin1', 8, 8 + nameLen)
    const rest = body.subarray(8 + nameLen)
    if (type === DATA && rest.length >= 4) records.push({ lsn, table, rows: rest.readUInt32LE(0), chunk: Buffer.from(rest.subarray(4)) })
    else if (type === INTENT && rest.length === 12) records.push({ type: 'intent', lsn, table, first: rest.readUIntLE(0, 6), last: rest.readUIntLE(6, 6) })
    else break
    o += HEAD + len
  }
  return { records, valid: o }
}

export class WriteAheadLog {
  private handle: FileHandle | null = null
  private current: Segment | null = null
  private readonly segments: Segment[] = []
  private nextLsn = 1
  private pending: Array<{ buf: Buffer; table: string | null; lsn: number }> = []
  private pendingBytes = 0
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = []
  private flushing: Promise<void> | null = null
  private closed = false
  /** Set when a write or fsync failed: what follows might sit behind a torn record, so the log takes nothing more. */
  private failed: unknown = null
  /** Per table, the highest LSN stored in ClickHouse. */
  readonly checkpoints = new Map<string, number>()
  /** What checkpoint.json on disk says: only this releases segments. */
  private durable = new Map<string, number>()
  private checkpointWrite: Promise<void> | null = null
  private checkpointDirty = false
  private rotations: Array<() => void> = []

  private constructor (private readonly dir: string, private readonly opts: WalOptions) {}

  /** Opens the log, truncating torn tails, and returns what the checkpoint does not cover. */
  static async open (dir: string, opts: WalOptions): Promise<{ wal: WriteAheadLog; recovered: Recovered }> {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const wal = new WriteAheadLog(dir, opts)
    try {
      const cp = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')) as Record<string, number>
      for (const [t, lsn] of Object.entries(cp)) wal.checkpoints.set(t, lsn)
      wal.durable = new Map(wal.checkpoints)
    } catch { /* no checkpoint yet */ }
    const recovered: Recovered = { records: new Map(), intents: new Map(), discardedBytes: 0 }
    // LSNs never repeat over the life of a data directory: a batch's deduplication token is its LSN
    // range, and the checkpoint compares LSNs. Besides the records themselves, the floor comes from
    // the checkpoint (every record it covers is below it) and from segment names (a segment is
    // named by the next LSN when it was opened, so an empty one left by an idle run still counts).
    for (const lsn of wal.checkpoints.values()) wal.nextLsn = Math.max(wal.nextLsn, lsn + 1)
    const files = readdirSync(dir).filter((f) => SEGMENT_NAME.test(f)).sort()
    for (const f of files) {
      wal.nextLsn = Math.max(wal.nextLsn, Number.parseInt(f, 10))
      const path = join(dir, f)
      const buf = readFileSync(path)
      const { records, valid } = parseSegment(buf)
      if (valid < buf.length) {
        recovered.discardedBytes += buf.length - valid
        truncateSync(path, valid)
      }
      if (records.length === 0) {
        // holds nothing (an idle run's segment): its name is counted above, and the new segment may take it
        rmSync(path, { force: true })
        continue
      }
      const seg: Segment = { path, bytes: valid, maxByTable: new Map() }
      for (const r of records) {
        wal.nextLsn = Math.max(wal.nextLsn, r.lsn + 1)
        const done = wal.checkpoints.get(r.table) ?? 0
        if ('type' in r) {
          if (r.last > done) push(recovered.intents, r.table, { lsn: r.lsn, table: r.table, first: r.first, last: r.last })
          continue
        }
        seg.maxByTable.set(r.table, r.lsn)
        if (r.lsn > done) push(recovered.records, r.table, r)
      }
      wal.segments.push(seg)
    }
    // the new segment (named by the next LSN) exists before any shipped one is deleted
    await wal.rotate()
    return { wal, recovered }
  }

  /** Bytes of log on disk not yet released by checkpoints. */
  get bytes (): number {
    let n = this.pendingBytes
    for (const s of this.segments) n += s.bytes
    return n
  }

  /** Appends rows; resolves with their LSN once they are on disk (fdatasync). */
  append (table: string, rows: number, chunk: Buffer): Promise<number> {
    const lsn = this.nextLsn++
    const head = Buffer.allocUnsafe(4)
    head.writeUInt32LE(rows, 0)
    this.enqueue(encode(DATA, lsn, table, head, chunk), table, lsn)
    return this.sync().then(() => lsn)
  }

  /** Records that a batch (first..last of a table) is about to be inserted; durable when resolved. */
  intent (table: string, first: number, last: number): Promise<void> {
    const rest = Buffer.allocUnsafe(12)
    rest.writeUIntLE(first, 0, 6)
    rest.writeUIntLE(last, 6, 6)
    this.enqueue(encode(INTENT, this.nextLsn++, table, rest), null, 0)
    return this.sync()
  }

  /** Everything of `table` up to `lsn` is stored: persist that, and drop segments nobody needs. */
  checkpoint (table: string, lsn: number): void {
    if ((this.checkpoints.get(table) ?? 0) >= lsn) return
    this.checkpoints.set(table, lsn)
    if (this.checkpointWrite !== null) { this.checkpointDirty = true; return }
    this.checkpointWrite = this.writeCheckpoints().finally(() => { this.checkpointWrite = null })
  }

  /** Resolves once every checkpoint given so far is on disk and the segments it releases are deleted. */
  async checkpointsWritten (): Promise<void> {
    while (this.checkpointWrite !== null) await this.checkpointWrite
  }

  /** Writes the checkpoints (temp file, fsync, rename, directory fsync) until no newer ones came in meanwhile. */
  private async writeCheckpoints (): Promise<void> {
    do {
      this.checkpointDirty = false
      const snapshot = new Map(this.checkpoints)
      try {
        const tmp = join(this.dir, 'checkpoint.json.tmp')
        const f = await open(tmp, 'w', 0o600)
        try {
          await f.writeFile(JSON.stringify(Object.fromEntries(snapshot)))
          await f.sync()
        } finally {
          await f.close()
        }
        await rename(tmp, join(this.dir, 'checkpoint.json'))
        await syncDir(this.dir)
        this.durable = snapshot
        this.collect()
      } catch (err) {
        // the log stays (nothing is deleted without a durable checkpoint); a restart re-ships under the same dedup tokens
        this.opts.onCheckpointError?.(err)
      }
    } while (this.checkpointDirty)
  }

  /**
   * Closes the current segment and starts a new one, so everything written so
   * far can be deleted once shipped (erasure: nothing of an erased patient
   * may stay on disk). Resolves after the switch.
   */
  startSegment (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.rotations.push(resolve)
      this.sync().catch(reject)
    })
  }

  async close (): Promise<void> {
    this.closed = true
    await this.sync()
    await this.checkpointsWritten()
    await this.handle?.close()
    this.handle = null
  }

  private enqueue (buf: Buffer, table: string | null, lsn: number): void {
    if (this.closed) throw new Error('write-ahead log is closed')
    if (this.failed !== null) throw new Error('write-ahead log failed; restart to recover', { cause: this.failed })
    this.pending.push({ buf, table, lsn })
    this.pendingBytes += buf.length
  }

  private sync (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject })
      if (this.flushing === null) this.flushing = this.flushLoop()
    })
  }

  private async flushLoop (): Promise<void> {
    // let every append of this tick join the same fsync
    await new Promise<void>((resolve) => setImmediate(resolve))
    while (this.waiters.length > 0) {
      const entries = this.pending
      const waiters = this.waiters
      const bytes = this.pendingBytes
      this.pending = []
      this.pendingBytes = 0
      this.waiters = []
      try {
        if (entries.length > 0) {
          const seg = this.current!
          const started = performance.now()
          // O_DSYNC: on disk when the write returns
          const { bytesWritten } = await this.handle!.write(Buffer.concat(entries.map((e) => e.buf), bytes))
          if (bytesWritten !== bytes) throw new Error(`short write to the write-ahead log (${bytesWritten} of ${bytes} bytes)`)
          this.opts.onSync?.((performance.now() - started) / 1000, bytes, entries.length)
          seg.bytes += bytes
          // the segment these records are in: what must be shipped before it may be deleted
          for (const e of entries) if (e.table !== null) seg.maxByTable.set(e.table, e.lsn)
        }
        for (const w of waiters) w.resolve()
      } catch (err) {
        this.failed = err
        for (const w of waiters) w.reject(err)
        for (const w of this.waiters) w.reject(err)
        this.waiters = []
        this.pending = []
        this.pendingBytes = 0
      }
      const wanted = this.rotations
      this.rotations = []
      if ((this.current!.bytes >= this.opts.segmentBytes || wanted.length > 0) && !this.closed) await this.rotate()
      for (const r of wanted) r()
    }
    this.flushing = null
  }

  private async rotate (): Promise<void> {
    await this.handle?.close()
    const path = join(this.dir, `${String(this.nextLsn).padStart(16, '0')}.wal`)
    this.handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC, 0o600)
    await syncDir(this.dir) // the new file's directory entry, before anything in it is acknowledged
    this.current = { path, bytes: 0, maxByTable: new Map() }
    this.segments.push(this.current)
    this.collect()
  }

  /** Deletes closed segments whose every table is covered by its checkpoint. */
  private collect (): void {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i]!
      if (s === this.current) continue
      let done = true
      for (const [t, max] of s.maxByTable) if ((this.durable.get(t) ?? 0) < max) { done = false; break }
      if (!done) continue
      rmSync(s.path, { force: true })
      this.segments.splice(i, 1)
    }
  }
}

async function syncDir (dir: string): Promise<void> {
  const d = await open(dir, 'r')
  try { await d.sync() } finally { await d.close() }
}

function push<T> (m: Map<string, T[]>, k: string, v: T): void {
  const a = m.get(k)
  if (a === undefined) m.set(k, [v])
  else a.push(v)
}

/** Size of the files in a log directory (for tests and metrics). */
export function walDiskBytes (dir: string): number {
  let n = 0
  for (const f of readdirSync(dir)) if (f.endsWith('.wal')) n += statSync(join(dir, f)).size
  return n
}
