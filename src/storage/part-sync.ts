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
import { execFile } from 'node:child_process'

/** Makes every file written so far under the data directory durable. */
export type SyncParts = () => Promise<void>

/** The logged tables' part settings in embedded mode (see above); merged parts stay fsync'd. */
export const SYNCFS_PART_SETTINGS = 'fsync_after_insert = 0, fsync_part_directory = 0, min_rows_to_fsync_after_merge = 1'

/** syncfs(2) of the file system holding `path`, through coreutils' `sync --file-system` (Node has no binding). */
export function syncFileSystem (path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['--file-system', path], { timeout: 120_000 }, (err) => { if (err === null) resolve(); else reject(new Error(`sync --file-system failed: ${err.message}`, { cause: err })) })
  })
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
