/**
 * How long each table's rows may wait for company before they are inserted. Every insert into
 * embedded chDB costs about the same whatever its size (≈ 9 ms of CPU and an fsync'd part for 5 rows or
 * 1,400: bench/RESULTS.md, issue 18 part 3) and later merges, and the inserts of all tables take turns
 * on one connection. A spot measurement, an alarm event or a device status comes one row per message,
 * so at the batch age everyone else uses those tables inserted a handful of rows twenty times a second
 * each, as often as the bracelet samples, and the samples waited behind them.
 */
import type { BatcherOptions } from './batcher.ts'
import type { TableName } from './rows.ts'

/** The least age a batch of these tables waits for (ms); the configured age where it is longer. */
export const MIN_BATCH_AGE_MS: Partial<Record<TableName, number>> = {
  spot_measurements: 250,
  alarm_events: 250,
  device_status: 250,
  // read only at start (the write-ahead log holds the rows until they are stored): nothing waits for it
  device_sequences: 1000,
  // what is queryable (GET /admin/tenants/:t/sequences), written once a message's rows are stored: it
  // says so up to this much later than it is true, four parts a second instead of one per telemetry insert
  device_heads: 250,
}

export function batchOptions (table: TableName, opts: BatcherOptions): BatcherOptions {
  const least = MIN_BATCH_AGE_MS[table]
  return least === undefined || least <= opts.maxAgeMs ? opts : { ...opts, maxAgeMs: least }
}
