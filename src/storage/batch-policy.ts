/**
 * How long each table's rows may wait for company before they are inserted. Every insert into
 * embedded chDB costs about the same whatever its size (≈ 9 ms of CPU and an fsync'd part for 5 rows or
 * 1,400: bench/RESULTS.md, issue 18 part 3) and later merges, and the inserts of all tables but the
 * samples take turns on one connection (the samples have one of their own: StorageConnection.bulk). A spot
 * measurement, an alarm event or a device status comes one row per message, so at the batch age the
 * samples use those tables inserted a handful of rows twenty times a second each.
 */
import type { BatcherOptions } from './batcher.ts'
import type { TableName } from './rows.ts'
import type { AckAfter } from './row-binary-insert.ts'

/** The least age a batch of these tables waits for (ms); the configured age where it is longer. */
export const MIN_BATCH_AGE_MS: Partial<Record<TableName, number>> = {
  // a second: an insert costs ~19 ms of CPU in embedded chDB whatever its size (bench/insert-parts.bench.ts),
  // and at 250 ms these took more inserts together than the bracelet samples in the fleet soak
  // (bench/RESULTS.md). Status reaches the fleet view from memory; only its history and a spot measurement's
  // row wait
  spot_measurements: 1000,
  device_status: 1000,
  rejected_messages: 1000,
  // a responder acknowledges an alarm by its stored row (POST /api/alarms/ack), often within a second of
  // seeing it: a shorter wait
  alarm_events: 250,
  // read only at start (the write-ahead log holds the rows until they are stored): nothing waits for it
  device_sequences: 1000,
  // what is queryable (GET /admin/tenants/:t/sequences), written once a message's rows are stored: it
  // says so up to this much later than it is true, four parts a second instead of one per telemetry insert
  device_heads: 250,
  // half a second: the samples' insert is ~60 % of the node's CPU, and at 200 ms (the default age) the
  // bracelet batches of 1,000 patients took 280 inserts a minute of ~13,000 rows, at 500 ms 119 of ~31,000.
  // With the replay-window file: 9–15 % less CPU per sample in storage-cost, 9 % (speed 12) and 29 %
  // (speed 6) in the fleet soak, merges included, and message → queryable p99 no later (bench/RESULTS.md). A bracelet batch covers a minute; half a second more
  // before a nurse's chart shows it is not seen
  vital_samples: 500,
}

/**
 * With VF_ACK_AFTER=store a bracelet's PUBACK waits for its batch's insert: there the samples keep the
 * configured age (the node spends CPU on more inserts rather than hold every PUBACK half a second).
 */
const KEPT_WHEN_STORE_ACK: ReadonlySet<TableName> = new Set<TableName>(['vital_samples'])

export function batchOptions (table: TableName, opts: BatcherOptions, ackAfter: AckAfter = 'log'): BatcherOptions {
  const least = ackAfter === 'store' && KEPT_WHEN_STORE_ACK.has(table) ? undefined : MIN_BATCH_AGE_MS[table]
  return least === undefined || least <= opts.maxAgeMs ? opts : { ...opts, maxAgeMs: least }
}
