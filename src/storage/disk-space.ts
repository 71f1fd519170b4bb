/**
 * Free space on the file system holding the data directory, polled off the
 * event loop. Below the reserve the node stops taking new acknowledged data
 * (devices keep it and retry) while the room left still serves what must go
 * on: the log's small intent records, ClickHouse's inserts and merges that
 * ship the log, and its checkpoints, which free the log's segments.
 */
import { statfs } from 'node:fs/promises'

export interface DiskSpace {
  /** Bytes available to this process on the file system, as of the last poll (Infinity before the first). */
  readonly freeBytes: number
  /** Polls now; resolves with the free bytes. */
  poll: () => Promise<number>
  stop: () => void
}

export function watchDiskSpace (dir: string, intervalMs: number, onChange: (freeBytes: number) => void): DiskSpace {
  let freeBytes = Number.POSITIVE_INFINITY
  let stopped = false
  const poll = async (): Promise<number> => {
    try {
      const s = await statfs(dir)
      freeBytes = s.bavail * s.bsize
    } catch {
      // a file system that cannot be asked is not taken for full: the writes themselves will tell
    }
    if (!stopped) onChange(freeBytes)
    return freeBytes
  }
  const timer = setInterval(() => { void poll() }, intervalMs)
  timer.unref()
  return {
    get freeBytes () { return freeBytes },
    poll,
    stop: () => { stopped = true; clearInterval(timer) },
  }
}
