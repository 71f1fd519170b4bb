/**
 * How inserted telemetry parts reach the disk. Migration 9 made ClickHouse fsync every file of every
 * inserted part and its directory, because the write-ahead log deleted a segment once its rows'
 * INSERT returned. In a soak the one embedded insert connection spent most of its time in those
 * fsyncs (a part is a dozen files; bench/part-fsync.bench.ts, bench/RESULTS.md), not in the CPU.
 *
 * The rows of the logged tables have a copy in the write-ahead log until a checkpoint releases it,
 * so their parts need to be durable only by the time the checkpoint is written, not when the
 * INSERT returns. In embedded mode those tables insert without fsync, and the log calls one
 * syncfs(2) on chDB's file system before each checkpoint write: every part whose INSERT returned
 * before the checkpoint's snapshot was taken is on disk before the snapshot is. If the sync fails
 * the checkpoint is not written, the segments stay, and a restart re-inserts under the same
 * deduplication tokens. Merged parts are still fsync'd (min_rows_to_fsync_after_merge): a merge
 * replaces parts that may already be checkpointed.
 *
 * A server is on another machine, where no syncfs of ours reaches: there migration 9's settings stay.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'

/** Makes every file written so far under the data directory durable. */
export type SyncParts = () => Promise<void>

/** The logged tables' part settings in embedded mode (see above); merged parts stay fsync'd. */
export const SYNCFS_PART_SETTINGS = 'fsync_after_insert = 0, fsync_part_directory = 0, min_rows_to_fsync_after_merge = 1'

// one line in, one sync, one line out; "$0" is the path
const LOOP = 'while read -r _; do if sync --file-system "$0"; then echo ok; else echo fail; fi; done'

/**
 * syncfs(2) of the file system holding `path`, through coreutils' `sync --file-system` (Node has no
 * binding), run by one helper shell started with the storage. Not a process per sync: forking the
 * node once it holds a gigabyte blocks its event loop for the copy of its page tables (measured:
 * 68.5 ms blocked and 35 ms of CPU per spawn at 2 GB RSS, bench/part-fsync.bench.ts), twice a second under load.
 */
export class FileSystemSyncer {
  private child: ChildProcessWithoutNullStreams | null = null
  private waiting: Array<{ resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = []
  private out = ''
  private closed = false

  constructor (private readonly path: string, private readonly timeoutMs = 120_000) { this.start() }

  sync (): Promise<void> {
    if (this.closed) return Promise.reject(new Error('file system syncer closed'))
    const child = this.child ?? this.start()
    return new Promise((resolve, reject) => {
      // no answer in time: the helper is stuck in a sync (a dying disk); a later answer could not be told apart, so start over
      const timer = setTimeout(() => { this.stop(new Error(`sync --file-system gave no answer in ${this.timeoutMs} ms`)) }, this.timeoutMs)
      this.waiting.push({ resolve, reject, timer })
      child.stdin.write('\n')
    })
  }

  close (): void {
    this.closed = true
    this.stop(new Error('file system syncer closed'))
  }

  private start (): ChildProcessWithoutNullStreams {
    const child = spawn('sh', ['-c', LOOP, this.path], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.child = child
    this.out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      this.out += chunk
      let nl: number
      while ((nl = this.out.indexOf('\n')) >= 0) {
        const line = this.out.slice(0, nl)
        this.out = this.out.slice(nl + 1)
        const w = this.waiting.shift()
        if (w === undefined) continue
        clearTimeout(w.timer)
        if (line === 'ok') w.resolve()
        else w.reject(new Error(`sync --file-system ${this.path} failed`))
      }
    })
    child.stderr.resume()
    const gone = (why: string) => () => { if (this.child === child) this.stop(new Error(why)) }
    child.on('error', gone('sync helper could not run'))
    child.on('exit', gone('sync helper exited'))
    child.stdin.on('error', () => {}) // a write after the helper died: its exit rejects the waiters
    // the helper never keeps the node alive
    child.unref()
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.()
    return child
  }

  private stop (err: Error): void {
    const child = this.child
    this.child = null
    if (child !== null) { child.stdin.end(); child.kill() }
    for (const w of this.waiting.splice(0)) { clearTimeout(w.timer); w.reject(err) }
  }
}

/**
 * Shares syncs between callers: a call while one runs waits for the next one, which starts after
 * it (a sync that began before a caller's parts were written may not cover them), and every call
 * made meanwhile shares that next one. Two log lanes checkpoint on their own; they share the syncs.
 */
export function sharedSync (run: SyncParts): SyncParts {
  let running: Promise<void> | null = null
  let next: Promise<void> | null = null
  const start = (): Promise<void> => {
    const p = run().finally(() => { if (running === p) running = null })
    running = p
    return p
  }
  return () => {
    if (running === null) return start()
    next ??= running.then(() => {}, () => {}).then(() => { next = null; return start() })
    return next
  }
}
