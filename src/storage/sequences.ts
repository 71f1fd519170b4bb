import { WINDOW_SIZE } from '../crypto/index.ts'
import type { StorageConnection } from './connection.ts'
import { viewTarget } from './cluster-sql.ts'
import { runCommand, selectRows } from './query.ts'

/** Sequence numbers are uint64: exact as bigint (ClickHouse hands them over as decimal text). */
export interface StoredSequences { tenant: string; high: bigint; recent: bigint[] }

/**
 * Per device: the highest stored sequence number and the stored ones within a
 * replay window below it (h.high - s.seq, never s.seq + window: UInt64 wraps
 * near 2^64). Read at start, after the write-ahead log's recovery, so that a
 * restart does not reopen the replay window, nor close it on a message that
 * was never stored.
 *
 * device_sequences holds a row per accepted message: the ingest path logs it
 * in the same group commit as the message's rows (Storage.write's `sequence`),
 * or alone when every row was filtered. Stores from before migration 14 also
 * have the rows the telemetry tables' views wrote. Embedded storage writes it
 * no more (replay-windows.ts keeps the windows beside the logs) and reads it
 * once, to seed that file from an earlier version's rows.
 */
export async function loadSequences (conn: StorageConnection): Promise<Map<string, StoredSequences>> {
  const t = conn.table('device_sequences')
  const rows = await selectRows<{ device: string; tenant: string; high: string; recent: string[] }>(conn, `WITH highs AS (SELECT device_id, max(seq) AS high FROM ${t} GROUP BY device_id)
      SELECT s.device_id AS device, any(s.tenant_id) AS tenant, toString(any(h.high)) AS high, arrayMap(x -> toString(x), groupArray(s.seq)) AS recent
      FROM ${t} AS s INNER JOIN highs AS h ON s.device_id = h.device_id
      WHERE h.high - s.seq < {window:UInt64}
      GROUP BY s.device_id`, { window: WINDOW_SIZE })
  const out = new Map<string, StoredSequences>()
  for (const r of rows) {
    out.set(r.device, { tenant: r.tenant, high: BigInt(r.high), recent: r.recent.map((s) => BigInt(s)) })
  }
  return out
}

/**
 * The views that wrote device_sequences from every telemetry insert (migration 3), device_heads
 * from device_sequences (migration 10) and then from every telemetry insert (migration 14). Each
 * ran, and wrote a part, in every insert: 13 ms of CPU on top of the insert's own 19 ms for a small
 * batch in embedded chDB (bench/insert-parts.bench.ts). The sequence rows come from the ingest
 * path, and the heads from the storage once a message's rows are stored (Storage.write).
 */
export const RETIRED_VIEWS: readonly string[] = [
  'vital_samples_sequences', 'spot_measurements_sequences', 'alarm_events_sequences', 'device_status_sequences', 'device_sequences_heads',
  'vital_samples_heads', 'spot_measurements_heads', 'alarm_events_heads', 'device_status_heads',
]

/**
 * Drops the retired views. createStorage calls it once the write-ahead log is recovered, not as a
 * migration: a log written before the upgrade holds telemetry rows without their sequence rows, and
 * only these views give those their device_sequences rows when the log ships them again at start.
 * On a cluster every node has the views (cluster-ddl.ts): they are dropped ON CLUSTER.
 */
export async function retireSequenceViews (conn: Pick<StorageConnection, 'client' | 'database' | 'cluster' | 'table'>): Promise<void> {
  for (const v of RETIRED_VIEWS) await runCommand(conn, `DROP VIEW IF EXISTS ${viewTarget(conn, v)} SYNC`)
}
