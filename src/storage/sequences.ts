import { WINDOW_SIZE } from '../crypto/index.ts'
import type { StorageConnection } from './connection.ts'
import { selectRows } from './query.ts'

/** Sequence numbers are uint64: exact as bigint (ClickHouse hands them over as decimal text). */
export interface StoredSequences { high: bigint; recent: bigint[] }

/**
 * Per device: the highest stored sequence number and the stored ones within a
 * replay window below it (h.high - s.seq, never s.seq + window: UInt64 wraps
 * near 2^64). Read at start so that a restart does not reopen the
 * replay window, nor close it on a message that was never stored.
 */
export async function loadSequences (conn: StorageConnection): Promise<Map<string, StoredSequences>> {
  const t = conn.table('device_sequences')
  const rows = await selectRows<{ device: string; high: string; recent: string[] }>(conn, `WITH highs AS (SELECT device_id, max(seq) AS high FROM ${t} GROUP BY device_id)
      SELECT s.device_id AS device, toString(any(h.high)) AS high, arrayMap(x -> toString(x), groupArray(s.seq)) AS recent
      FROM ${t} AS s INNER JOIN highs AS h ON s.device_id = h.device_id
      WHERE h.high - s.seq < {window:UInt64}
      GROUP BY s.device_id`, { window: WINDOW_SIZE })
  const out = new Map<string, StoredSequences>()
  for (const r of rows) {
    out.set(r.device, { high: BigInt(r.high), recent: r.recent.map((s) => BigInt(s)) })
  }
  return out
}
