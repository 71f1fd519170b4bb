import { join, resolve } from 'node:path'
import { mkdirSync, rmSync } from 'node:fs'
import { unlink, writeFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { closeConnection, connect, type StorageConnection, type StorageTarget } from './connection.ts'
import { migrate } from './migrate.ts'
import { TableBatcher, type BatcherOptions, type FlushReport, type InsertFn } from './batcher.ts'
import { COLUMNS, TELEMETRY_TABLES, type TableName } from './rows.ts'
import { WriteAheadLog, type Recovered, type WalErrorCode, type WalState } from './wal.ts'
import { batchOptions } from './batch-policy.ts'
import { retireSequenceViews } from './sequences.ts'
import { FileSystemSyncer, sharedSync, SYNCFS_PART_SETTINGS, type SyncParts } from './part-sync.ts'
import { sqlString } from '../sql.ts'
import { VitalflowError } from '../errors.ts'

export class StorageError extends VitalflowError<'ING_ERR_STORAGE' | 'ING_ERR_BACKPRESSURE'> {}

/** Tables whose rows were acknowledged to a device: they go through a write-ahead log. */
const LOGGED: ReadonlySet<TableName> = new Set<TableName>([...TELEMETRY_TABLES, 'device_sequences'])

/**
 * Two log lanes. Button presses, falls and device status have a log of their
 * own (`wal-priority/`), committed on its own: an alarm's O_DSYNC write never
 * waits behind a telemetry group commit, a telemetry lane over its budget or
 * slowed does not hold it, and it is relayed to responders the moment its own
 * commit returns. Each lane has its own LSNs and checkpoint, and its batches
 * their own deduplication tokens (`priority/` prefix), so the lanes never
 * collide in ClickHouse's deduplication window.
 */
export type Lane = 'bulk' | 'priority'
const PRIORITY_TABLES: ReadonlySet<TableName> = new Set<TableName>(['alarm_events', 'device_status'])
export const laneOf = (table: TableName): Lane => PRIORITY_TABLES.has(table) ? 'priority' : 'bulk'

export interface StorageStats {
  walBytes: number
  walBudgetBytes: number
  queuedRows: Record<string, number>
  recoveredRows: number
  discardedBytes: number
  /** Bulk rows taken (in the log, or on their way into it) and not yet stored in ClickHouse. */
  backlogRows: number
}

/** Whether a PUBACK can go out now; if not, the refusal code devices' messages get. */
export type Acknowledging = { ok: true } | { ok: false; code: WalErrorCode | 'ING_ERR_BACKPRESSURE' }

/** How far storage is behind on bulk rows, and whether its inserts are failing now (an outage, not slowness). */
export interface Backlog { rows: number; failing: boolean }

export interface Storage {
  readonly conn: StorageConnection
  /**
   * Queues rows for a table. For acknowledged data it resolves once the rows
   * are in the write-ahead log of their lane (fsync'd): that is when a PUBACK
   * may go out. It rejects with ING_ERR_BACKPRESSURE when the lane's log is
   * over its disk budget. `sequence` (a device_sequences row) goes into the
   * same lane's log in the same group commit as the rows, with one budget
   * check for both: the two are durable together or not at all. `lane` is the
   * table's own unless given (a message whose rows were all filtered writes
   * its sequence number in its stream's lane).
   */
  write: (table: TableName, chunk: Buffer, rows: number, sequence?: Buffer, lane?: Lane) => Promise<void>
  /** Ships everything queued and waits for the inserts. */
  flush: () => Promise<void>
  stats: () => StorageStats
  /** Bulk rows not yet stored: what admission control bounds. */
  backlog: () => Backlog
  /** Whether acknowledged data is taken now: in both lanes, or in the one given. */
  acknowledging: (lane?: Lane) => Acknowledging
  /** Ships everything and starts new log segments, so the logs keep nothing written before this call once it is stored. */
  sealLog: () => Promise<void>
  /** Ships what it can within `deadlineMs`; what is left stays in the log for the next start. */
  close: (deadlineMs?: number) => Promise<void>
}

/** What the hot path needs of storage: queue rows (resolving once they are durable). Fakes and wrappers implement only this. */
export type StorageWriter = Pick<Storage, 'write'>

export interface StorageOptions extends StorageTarget {
  batch: BatcherOptions
  wal: { segmentBytes: number; budgetBytes: number; reserveBytes?: number; probeMs?: number }
  onFlush?: (r: FlushReport) => void
  /** Each write-ahead log group commit: seconds (the O_DSYNC write), bytes, appends, and the lane. */
  onWalSync?: (seconds: number, bytes: number, appends: number, lane: Lane) => void
  /** A write-ahead log checkpoint could not be written; the log keeps its segments, so nothing is lost. */
  onCheckpointError?: (err: unknown) => void
  /** A lane's log stopped taking data (full disk, failed write) or took it up again. */
  onWalState?: (state: WalState, lane: Lane) => void
  /** Fault injection (tests only): runs before each group-commit write of a lane, which waits for it. */
  beforeWalWrite?: (lane: Lane) => Promise<void>
  /** Fault injection (tests only): replaces the syncfs that makes embedded parts durable before a checkpoint. */
  syncParts?: SyncParts
}

interface LaneLog { wal: WriteAheadLog; recovered: Recovered; batchers: Record<TableName, TableBatcher> }

export async function createStorage (opts: StorageOptions): Promise<Storage> {
  if (opts.wal.budgetBytes < 2 * opts.wal.segmentBytes) {
    // the segment being written is never released, so a budget it alone can exceed would refuse every PUBACK for good
    throw new StorageError('ING_ERR_STORAGE', `write-ahead log budget (${opts.wal.budgetBytes} bytes) must be at least twice its segment size (${opts.wal.segmentBytes} bytes)`)
  }
  const conn = await connect(opts)
  await migrate(conn)
  // embedded: the logged tables' inserted parts are made durable by one syncfs before each log
  // checkpoint instead of an fsync per file (src/storage/part-sync.ts); a server keeps fsync'ing them
  let syncParts: SyncParts | undefined
  let syncer: FileSystemSyncer | null = null
  if (conn.mode === 'embedded') {
    for (const t of LOGGED) await conn.client.command({ query: `ALTER TABLE ${conn.table(t)} MODIFY SETTING ${SYNCFS_PART_SETTINGS}` })
    if (opts.syncParts === undefined) {
      const s = new FileSystemSyncer(resolve(join(opts.dataDir, 'chdb')))
      syncer = s
      syncParts = sharedSync(() => s.sync())
    } else {
      syncParts = sharedSync(opts.syncParts)
    }
  }
  const insertInto = await rowBinaryInserter(conn, join(opts.dataDir, 'spool'))
  const inserts = {} as Record<TableName, InsertFn>
  for (const name of Object.keys(COLUMNS) as TableName[]) inserts[name] = await insertInto(name)
  let failing = false
  const onFlush = (r: FlushReport): void => {
    if (laneOf(r.table as TableName) === 'bulk' && LOGGED.has(r.table as TableName)) failing = r.error !== undefined
    opts.onFlush?.(r)
  }
  const openLane = async (lane: Lane, dir: string): Promise<LaneLog> => {
    const beforeWrite = opts.beforeWalWrite
    const { wal, recovered } = await WriteAheadLog.open(join(opts.dataDir, dir), {
      segmentBytes: opts.wal.segmentBytes,
      reserveBytes: opts.wal.reserveBytes ?? 0,
      ...(opts.wal.probeMs === undefined ? {} : { probeMs: opts.wal.probeMs }),
      ...(opts.onWalState === undefined ? {} : { onState: (s: WalState) => { opts.onWalState?.(s, lane) } }),
      ...(opts.onWalSync === undefined ? {} : { onSync: (s: number, b: number, a: number) => { opts.onWalSync?.(s, b, a, lane) } }),
      ...(opts.onCheckpointError === undefined ? {} : { onCheckpointError: opts.onCheckpointError }),
      ...(beforeWrite === undefined ? {} : { beforeWrite: () => beforeWrite(lane) }),
      ...(syncParts === undefined ? {} : { beforeCheckpoint: syncParts }),
    })
    const log = {
      intent: (t: string, first: number, last: number) => wal.intent(t, first, last),
      checkpoint: (t: string, last: number) => { wal.checkpoint(t, last) },
      ...(lane === 'bulk' ? {} : { tokenPrefix: `${lane}/` }),
    }
    const batchers = {} as Record<TableName, TableBatcher>
    for (const name of Object.keys(COLUMNS) as TableName[]) {
      // unlogged tables (refusals, security events) have their batcher in the bulk lane only
      if (lane === 'bulk' || LOGGED.has(name)) batchers[name] = new TableBatcher(name, inserts[name], batchOptions(name, opts.batch), onFlush, LOGGED.has(name) ? log : null)
    }
    return { wal, recovered, batchers }
  }
  // the bulk lane keeps the log directory of earlier versions: what they logged (alarms too) ships from it
  const lanes: Record<Lane, LaneLog> = { bulk: await openLane('bulk', 'wal'), priority: await openLane('priority', 'wal-priority') }
  const all = [lanes.priority, lanes.bulk]
  let recoveredRows = 0
  for (const l of all) recoveredRows += await shipRecovered(l.recovered, l.batchers)
  await retireSequenceViews(conn) // only now: what the logs shipped above may be from before they were retired

  let backlogRows = 0
  const heads = lanes.bulk.batchers.device_heads
  const flush = async (): Promise<void> => {
    for (const l of all) await Promise.all(Object.values(l.batchers).map((b) => b.drain()))
    for (const l of all) await l.wal.checkpointsWritten()
  }
  const acknowledgingIn = (lane: Lane): Acknowledging => {
    const { wal } = lanes[lane]
    const state = wal.state
    if (!state.writable) return { ok: false, code: state.code }
    return wal.bytes > opts.wal.budgetBytes ? { ok: false, code: 'ING_ERR_BACKPRESSURE' } : { ok: true }
  }
  let closing: Promise<void> | null = null
  return {
    conn,
    write: (table, chunk, rows, sequence, lane = laneOf(table)) => {
      const { wal, batchers } = lanes[LOGGED.has(table) ? lane : 'bulk']
      const b = batchers[table]
      if (!LOGGED.has(table)) return b.add(chunk, rows)
      if (wal.bytes > opts.wal.budgetBytes) {
        return Promise.reject(new StorageError('ING_ERR_BACKPRESSURE', `write-ahead log over its budget of ${opts.wal.budgetBytes} bytes; storage is behind`))
      }
      const counted = lane === 'bulk' ? rows : 0
      backlogRows += counted
      // logged rows are acknowledged once in the log; their batch is not awaited (it
      // retries until stored, and a batch promise carries its own catch: batcher.ts)
      const logged = wal.append(table, rows, chunk).then((lsn) => {
        const stored = b.add(chunk, rows, lsn)
        if (counted > 0) void stored.finally(() => { backlogRows -= counted }).catch(() => {})
        // what is queryable: the message's head, once its rows are (a part a second, not one per insert)
        if (sequence !== undefined) void stored.then(() => heads.add(sequence, 1)).catch(() => {})
      }, (err: unknown) => { backlogRows -= counted; throw err })
      if (sequence === undefined) return logged
      const s = batchers.device_sequences
      return Promise.all([logged, wal.append('device_sequences', 1, sequence).then((lsn) => { void s.add(sequence, 1, lsn) })]).then(() => {})
    },
    flush,
    backlog: () => ({ rows: backlogRows, failing }),
    acknowledging: (lane) => {
      if (lane !== undefined) return acknowledgingIn(lane)
      const bulk = acknowledgingIn('bulk')
      return bulk.ok ? acknowledgingIn('priority') : bulk
    },
    sealLog: async () => {
      await flush()
      for (const l of all) await l.wal.startSegment()
      await flush() // checkpoints (and the switch itself) delete every segment that is fully shipped
    },
    stats: () => {
      const queuedRows: Record<string, number> = {}
      for (const l of all) for (const [t, b] of Object.entries(l.batchers)) queuedRows[t] = (queuedRows[t] ?? 0) + b.queuedRows
      return {
        walBytes: lanes.bulk.wal.bytes + lanes.priority.wal.bytes,
        walBudgetBytes: opts.wal.budgetBytes,
        queuedRows,
        recoveredRows,
        discardedBytes: lanes.bulk.recovered.discardedBytes + lanes.priority.recovered.discardedBytes,
        backlogRows,
      }
    },
    close: (deadlineMs = 10_000) => {
      closing ??= (async () => {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([flush(), new Promise((resolve) => { timer = setTimeout(resolve, deadlineMs) })])
        clearTimeout(timer)
        for (const l of all) for (const b of Object.values(l.batchers)) b.stop()
        for (const l of all) await l.wal.close()
        syncer?.close()
        await closeConnection(conn)
      })()
      return closing
    },
  }
}

/** Re-inserts what the log holds beyond the checkpoint: announced batches as they were, then the rest. */
async function shipRecovered (recovered: Recovered, batchers: Partial<Record<TableName, TableBatcher>>): Promise<number> {
  let rows = 0
  for (const [table, records] of recovered.records) {
    const b = batchers[table as TableName]
    if (b === undefined) continue
    let rest = records
    for (const intent of recovered.intents.get(table) ?? []) {
      const inBatch = rest.filter((r) => r.lsn >= intent.first && r.lsn <= intent.last)
      rest = rest.filter((r) => r.lsn > intent.last || r.lsn < intent.first)
      if (inBatch.length === 0) continue
      const n = inBatch.reduce((s, r) => s + r.rows, 0)
      rows += n
      await b.replay(inBatch.map((r) => r.chunk), n, intent.first, intent.last)
    }
    // queued, then awaited together by drain(); a batch promise carries its own catch
    for (const r of rest) { rows += r.rows; void b.add(r.chunk, r.rows, r.lsn) }
    await b.drain()
  }
  return rows
}

/**
 * RowBinary inserts, in COLUMNS order, typed by the table itself. A server
 * takes the bytes as the request body. Embedded chDB has no request body: the
 * batch goes through a spool file read by file(), which is also ClickHouse's
 * fastest way in (measured: RowBinary through file() ~395k rows/s vs ~227k for
 * TabSeparated). Spool files live only for one insert; whatever a crash
 * leaves is removed on start (the write-ahead log still holds those rows).
 */
async function rowBinaryInserter (conn: StorageConnection, spool: string): Promise<(name: TableName) => Promise<InsertFn>> {
  rmSync(spool, { recursive: true, force: true })
  mkdirSync(spool, { recursive: true })
  let serial = 0
  return async (name) => {
    const table = conn.table(name)
    const cols = COLUMNS[name]
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
    return async (body, token) => {
      const settings = token === undefined ? {} : { clickhouse_settings: { insert_deduplication_token: token } }
      try {
        if (conn.mode === 'server') {
          const r = await conn.client.exec({ query: `INSERT INTO ${target} FORMAT RowBinary`, values: Readable.from([body]), ...settings })
          r.stream.resume()
          return
        }
        const file = join(spool, `${name}-${++serial}.bin`)
        await writeFile(file, body)
        try {
          // literals, not query parameters: chdb-node serialises parameterised queries under a lock of its
          // own (runExclusiveParam). The embedded session still runs one statement at a time (measured in
          // bench/RESULTS.md, fleet soak), so inserts queue there; in server mode they run concurrently
          await conn.client.command({ query: `INSERT INTO ${target} SELECT * FROM file(${sqlString(file)}, RowBinary, ${sqlString(structure)})`, ...settings })
        } finally {
          await unlink(file).catch(() => {})
        }
      } catch (cause) {
        throw new StorageError('ING_ERR_STORAGE', `insert into ${table} failed`, { cause })
      }
    }
  }
}
