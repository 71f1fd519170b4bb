/**
 * The name of one write-ahead log directory, part of every deduplication token its batches carry.
 *
 * A batch's token was its table and LSN range alone, and LSNs never repeat over the life of a log
 * directory. But a directory can end: a node's disk lost for good and the node started again on a
 * new one (VF_ACK_AFTER=store is built for exactly that) counts its LSNs from 1 again, and so does
 * every node of a cluster, all inserting into the same shards. ClickHouse keeps the last 10,000
 * tokens per table and takes an insert whose token it has seen as done without storing it: the new
 * log's first batches would be dropped as copies of the old log's (or another node's), silently and
 * after their PUBACK. A random id made when the directory is, and kept in it, makes the tokens of two
 * directories differ.
 *
 * A directory written by an earlier version has no id; it gets one when this version opens it, from
 * its next LSN on (`sinceLsn`). The batches such a version announced (intents below `sinceLsn`) keep
 * the token they were announced with, without an id, so a restart re-inserts them as they were.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface LogId {
  /** 16 hex digits, unique to the directory. */
  id: string
  /** The first LSN whose batches carry the id in their tokens. */
  sinceLsn: number
  /** Made by this call, not read. */
  created: boolean
}

const FILE = 'log-id.json'

/** Reads the directory's id, or makes one (durably, before any batch could use it) starting at `nextLsn`. */
export function loadOrCreateLogId (dir: string, nextLsn: number): LogId {
  try {
    const v = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as Partial<LogId>
    if (typeof v.id === 'string' && /^[0-9a-f]{16}$/.test(v.id) && Number.isSafeInteger(v.sinceLsn)) return { id: v.id, sinceLsn: v.sinceLsn!, created: false }
  } catch { /* none yet */ }
  const made: LogId = { id: randomBytes(8).toString('hex'), sinceLsn: nextLsn, created: true }
  const tmp = join(dir, `${FILE}.tmp`)
  writeFileSync(tmp, JSON.stringify({ id: made.id, sinceLsn: made.sinceLsn }), { mode: 0o600 })
  syncPath(tmp)
  renameSync(tmp, join(dir, FILE))
  syncPath(dir)
  return made
}

function syncPath (path: string): void {
  const fd = openSync(path, 'r')
  try { fsyncSync(fd) } finally { closeSync(fd) }
}
