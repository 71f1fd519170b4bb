import { WINDOW_SIZE } from '../crypto/index.ts'
import type { StorageConnection } from './connection.ts'

export interface StoredSequences { high: number; recent: number[] }

/**
 * Per device: the highest stored sequence number and the stored ones within a
 * replay window below it. Read at start so that a restart does not reopen the
 * replay window, nor close it on a message that was never stored.
 */
export async function loadSequences (conn: StorageConnection): Promise<Map<string, StoredSequences>> {
  const t = conn.table('device_sequences')
  const rs = await conn.client.query({
    query: `WITH highs AS (SELECT device_id, max(seq) AS high FROM ${t} GROUP BY device_id)
      SELECT s.device_id AS device, toString(any(h.high)) AS high, arrayMap(x -> toString(x), groupArray(s.seq)) AS recent
      FROM ${t} AS s INNER JOIN highs AS h ON s.device_id = h.device_id
      WHERE s.seq + {window:UInt64} > h.high
      GROUP BY s.device_id`,
    query_params: { window: WINDOW_SIZE },
    format: 'JSONEachRow',
  })
  const out = new Map<string, StoredSequences>()
  for (const r of await rs.json<{ device: string; high: string; recent: string[] }>()) {
    out.set(r.device, { high: Number(r.high), recent: r.recent.map(Number) })
  }
  return out
}
