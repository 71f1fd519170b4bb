/**
 * RowBinary inserts, in COLUMNS order, typed by the table itself. A server
 * takes the bytes as the request body. Embedded chDB has no request body: the
 * batch goes through a spool file read by file() (measured: RowBinary through
 * file() ~395k rows/s vs ~227k for TabSeparated); the samples' batches are
 * re-laid as Native for it (NATIVE_INSERTS), about three times cheaper still.
 * Spool files live only for one insert; whatever a crash leaves is removed on
 * start (the write-ahead log still holds those rows).
 */
import { mkdirSync, rmSync } from 'node:fs'
import { unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import type { ClickHouseSettings } from '@clickhouse/client'
import type { StorageConnection } from './connection.ts'
import type { InsertFn } from './batcher.ts'
import { COLUMNS, LOGGED_TABLES, type TableName } from './rows.ts'
import { nativeLayout } from './native.ts'
import type { NativeRelay } from './native-relay.ts'
import { sqlString } from '../sql.ts'
import { VitalflowError } from '../errors.ts'

export class StorageError extends VitalflowError<'ING_ERR_STORAGE' | 'ING_ERR_BACKPRESSURE'> {}

/** When a device's PUBACK goes out: once its rows are in the write-ahead log, or once they are also in ClickHouse. */
export type AckAfter = 'log' | 'store'

/** What every insert carries besides its rows. */
export interface InsertPolicy {
  ackAfter: AckAfter
  /** insert_quorum of the logged tables' inserts in server mode with ackAfter 'store'. */
  quorum: number
  /** Fault injection (tests only): awaited before each insert into a table, e.g. to stall one. */
  beforeInsert?: (table: TableName) => Promise<void>
  /** Embedded: writes NATIVE_INSERTS' spool files as Native, off the event loop. */
  relay?: NativeRelay
}

/**
 * The settings of one insert. A logged batch carries its deduplication token. With `store`, a server's
 * INSERT of acknowledged rows returns only once `quorum` replicas of the shard have them
 * (insert_quorum; insert_quorum_parallel lets the one connection's inserts of several tables wait for
 * their quorums side by side), and an INSERT into a Distributed table only once the shards did
 * (distributed_foreground_insert; otherwise it returns when the rows are queued on the server it
 * reached). Embedded chDB has no replicas: it gets none of these.
 */
export function insertSettings (mode: StorageConnection['mode'], policy: Pick<InsertPolicy, 'ackAfter' | 'quorum'>, table: TableName, token: string | undefined): ClickHouseSettings {
  const s: ClickHouseSettings = {}
  if (token !== undefined) s.insert_deduplication_token = token
  if (mode === 'server' && policy.ackAfter === 'store' && LOGGED_TABLES.has(table)) {
    s.insert_quorum = String(policy.quorum)
    s.insert_quorum_parallel = 1
    s['distributed_foreground_insert'] = 1
  }
  return s
}

/**
 * An embedded insert's settings as the statement's own SETTINGS clause. chdb's connection sends
 * `clickhouse_settings` as `SET k = v; ` before the statement, and a SET stays in its session: every
 * later statement on that connection carried the last batch's deduplication token, so an insert
 * without one of its own (an erasure's copy, a repair by hand) into a table with a deduplication window
 * was taken for a repeat of that batch and silently dropped if it reached the same table. A server gets
 * settings per request and keeps none.
 */
export function settingsClause (settings: ClickHouseSettings): string {
  const set = Object.entries(settings).filter(([, v]) => v !== undefined)
  if (set.length === 0) return ''
  return ` SETTINGS ${set.map(([k, v]) => {
    if (!/^[a-z_][a-z0-9_]*$/i.test(k)) throw new Error(`not a setting name: ${k}`)
    return `${k} = ${typeof v === 'number' ? String(v) : sqlString(String(v))}`
  }).join(', ')}`
}

/**
 * The tables whose inserts go through the connection's `bulk` client: samples, the largest inserts by
 * far (tens of thousands of rows, hundreds of milliseconds each at speed 12). On the one embedded insert
 * connection every sequence-number, heads, alarm and status insert waited behind them.
 */
export const BULK_INSERTS: ReadonlySet<TableName> = new Set<TableName>(['vital_samples'])

/**
 * The tables whose batches embedded chDB reads as Native instead of RowBinary: about three times less of
 * its CPU per row (native.ts). The samples only: the other tables' batches are small, and a trip through
 * the relay worker would add to an alarm's insert. A server takes RowBinary (its parsing is on its own
 * cores, and what it accepts as Native for a LowCardinality column is not checked here: no server runs).
 */
export const NATIVE_INSERTS: ReadonlySet<TableName> = new Set<TableName>(['vital_samples'])

/**
 * Tables written in RowBinary that are not a batcher's: no log, no token, written whole by their owner.
 * `device_presence` holds up to one row per device every five seconds: as JSON, 10,000 rows took 63 ms of
 * the event loop to build and encode (a speed-12 soak's CPU profile), in RowBinary a few.
 */
export const OTHER_COLUMNS = {
  device_presence: ['tenant_id', 'device_id', 'last_seen', 'battery', 'firmware', 'status_at', 'cert_not_after', 'updated_at'],
} as const
export type OtherTable = keyof typeof OTHER_COLUMNS

export async function rowBinaryInserter (conn: StorageConnection, spool: string, policy: InsertPolicy): Promise<(name: TableName | OtherTable) => Promise<InsertFn>> {
  rmSync(spool, { recursive: true, force: true })
  mkdirSync(spool, { recursive: true })
  let serial = 0
  return async (name) => {
    const table = conn.table(name)
    // a batcher's table (its settings, fault hook and connection by table), or one of OTHER_COLUMNS
    const batched = name in COLUMNS ? name as TableName : null
    const cols: readonly string[] = batched !== null ? COLUMNS[batched] : OTHER_COLUMNS[name as OtherTable]
    const types = new Map((await (await conn.client.query({
      query: 'SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}',
      query_params: { db: conn.database, t: name }, format: 'JSONEachRow',
    })).json<{ name: string; type: string }>()).map((c) => [c.name, c.type]))
    const structure = cols.map((c) => {
      const type = types.get(c)
      if (type === undefined) throw new Error(`${table} has no column ${c}`)
      return `${c} ${type}`
    }).join(', ')
    const target = `${table} (${cols.join(', ')})`
    const client = batched !== null && BULK_INSERTS.has(batched) ? conn.bulk : conn.client
    // the relay is embedded storage's only (storage.ts); a server takes the RowBinary body below
    const relay = batched !== null && NATIVE_INSERTS.has(batched) ? policy.relay : undefined
    const layout = relay === undefined ? null : nativeLayout(cols.map((c) => types.get(c)!))
    const native = relay === undefined || layout === null ? null : { ...layout, relay }
    const source = native === null
      ? `RowBinary, ${sqlString(structure)}`
      : `Native, ${sqlString(cols.map((c, i) => `${c} ${native.sentAs[i]!}`).join(', '))}`
    return async (body, token) => {
      const settings: ClickHouseSettings = batched === null ? {} : insertSettings(conn.mode, policy, batched, token)
      try {
        if (policy.beforeInsert !== undefined && batched !== null) await policy.beforeInsert(batched)
        if (conn.mode === 'server') {
          const r = await client.exec({ query: `INSERT INTO ${target} FORMAT RowBinary`, values: Readable.from([body]), clickhouse_settings: settings })
          // the server answers an INSERT once it is done (with a quorum: once the replicas have it)
          await finished(r.stream.resume())
          return
        }
        const file = join(spool, `${name}-${++serial}.bin`)
        if (native === null) await writeFile(file, body)
        else await native.relay.write(file, body, native.layout, cols, native.sentAs)
        try {
          // literals, not query parameters: chdb-node serialises parameterised queries under a lock of its
          // own (runExclusiveParam). An embedded connection runs one statement at a time (measured in
          // bench/RESULTS.md, fleet soak): sample inserts have a connection of their own (BULK_INSERTS),
          // the other tables' queue on the other; in server mode they run concurrently
          await client.command({ query: `INSERT INTO ${target}${settingsClause(settings)} SELECT * FROM file(${sqlString(file)}, ${source})` })
        } finally {
          await unlink(file).catch(() => {})
        }
      } catch (cause) {
        throw new StorageError('ING_ERR_STORAGE', `insert into ${table} failed`, { cause })
      }
    }
  }
}
