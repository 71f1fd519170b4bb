import { join, resolve } from 'node:path'
import { closeConnection, connect, type StorageConnection, type StorageTarget } from './connection.ts'
import { migrate } from './migrate.ts'
import { TableBatcher, type BatcherOptions, type FlushReport, type InsertFn } from './batcher.ts'
import { COLUMNS, LOGGED_TABLES as LOGGED, TELEMETRY_TABLES, type TableName } from './rows.ts'
import { WriteAheadLog, type Recovered, type WalErrorCode, type WalState } from './wal.ts'
import { batchOptions } from './batch-policy.ts'
import { loadSequences, retireSequenceViews } from './sequences.ts'
import { ReplayWindowFile } from './replay-windows.ts'
import { ReplayWindow } from '../crypto/index.ts'
import { selectRows } from './query.ts'
import { FileSystemSyncer, sharedSync, SYNCFS_PART_SETTINGS, type SyncParts } from './part-sync.ts'
import { rowBinaryInserter, StorageError, type AckAfter } from './row-binary-insert.ts'
import { createNativeRelay, type NativeRelayStats } from './native-relay.ts'
import { StoredHeads } from './stored-heads.ts'

export { StorageError, type AckAfter } from './row-binary-insert.ts'

/** With VF_ACK_AFTER=store, a message's PUBACK waits for its rows' insert into one of these. */
const STORED_BEFORE_ACK: ReadonlySet<TableName> = new Set<TableName>(TELEMETRY_TABLES)

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
  /** Both log lanes began with this start: their directories held nothing (a first start, or a lost disk). */
  newLog: boolean
  /** Embedded: the batches written as Native by the relay worker (native-relay.ts); a server: null. */
  native: NativeRelayStats | null
}

/** Whether a PUBACK can go out now; if not, the refusal code devices' messages get. */
export type Acknowledging = { ok: true } | { ok: false; code: WalErrorCode | 'ING_ERR_BACKPRESSURE' | 'ING_ERR_STORAGE' }

/** How far storage is behind on bulk rows, and whether its inserts are failing now (an outage, not slowness). */
export interface Backlog { rows: number; failing: boolean }

export interface Storage {
  readonly conn: StorageConnection
  /**
   * Queues rows for a table. For acknowledged data it resolves once the rows
   * are in the write-ahead log of their lane (fsync'd): that is when a PUBACK
   * may go out. With `ackAfter: 'store'` a telemetry table's rows resolve only
   * once they are also inserted (and, embedded, synced to disk; in server mode
   * on a quorum of replicas). It rejects with ING_ERR_BACKPRESSURE when the lane's log is
   * over its disk budget. `sequence` (a device_sequences row) goes into the
   * same lane's log in the same group commit as the rows, with one budget
   * check for both: the two are durable together or not at all. `lane` is the
   * table's own unless given (a message whose rows were all filtered writes
   * its sequence number in its stream's lane). With 'store' a sequence row is
   * inserted only after its message's rows: a stored sequence number (what
   * refuses a resend as a replay) never stands for rows that are not stored,
   * also once the log is gone.
   */
  write: (table: TableName, chunk: Buffer, rows: number, sequence?: Buffer, lane?: Lane) => Promise<void>
  /**
   * Each device's replay window as the logs and the store have it: what was accepted and made durable
   * (embedded: the file beside the logs, replay-windows.ts; a server: device_sequences). Copies, read at start.
   */
  storedSequences: () => Promise<Map<string, ReplayWindow>>
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
  /** Inserts RowBinary rows into `device_presence` (columns as OTHER_COLUMNS), outside the logs: presence.ts's flush. */
  insertPresence: (rows: Buffer) => Promise<void>
  /** Embedded: what is queryable per device, as device_heads has it, kept in memory (stored-heads.ts); a server: null (read the table). */
  readonly heads: StoredHeads | null
}

/** What the hot path needs of storage: queue rows (resolving once they are durable). Fakes and wrappers implement only this. */
export type StorageWriter = Pick<Storage, 'write'>

export interface StorageOptions extends StorageTarget {
  batch: BatcherOptions
  /** When acknowledged rows resolve: in the log (default), or also in ClickHouse. */
  ackAfter?: AckAfter
  /** insert_quorum of acknowledged rows in server mode with ackAfter 'store' (default 2). */
  insertQuorum?: number
  wal: { segmentBytes: number; budgetBytes: number; reserveBytes?: number; probeMs?: number }
  onFlush?: (r: FlushReport) => void
  /** Each write-ahead log group commit: seconds (the O_DSYNC write), bytes, appends, and the lane. */
  onWalSync?: (seconds: number, bytes: number, appends: number, lane: Lane) => void
  /** A write-ahead log checkpoint could not be written; the log keeps its segments, so nothing is lost. */
  onCheckpointError?: (err: unknown) => void
  /** Embedded: the replay-window file was there but could not be read, and the windows were seeded from the store instead. */
  onReplayWindowsDamaged?: (why: string) => void
  /** A lane's log stopped taking data (full disk, failed write) or took it up again. */
  onWalState?: (state: WalState, lane: Lane) => void
  /** Fault injection (tests only): runs before each group-commit write of a lane, which waits for it. */
  beforeWalWrite?: (lane: Lane) => Promise<void>
  /** Fault injection (tests only): replaces the syncfs that makes embedded parts durable before a checkpoint. */
  syncParts?: SyncParts
  /** Fault injection (tests only): awaited before each insert into a table (e.g. to stall one). */
  beforeInsert?: (table: TableName) => Promise<void>
}

interface LaneLog { lane: Lane; wal: WriteAheadLog; recovered: Recovered; batchers: Record<TableName, TableBatcher> }

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
  const ackAfter = opts.ackAfter ?? 'log'
  const storeAck = ackAfter === 'store'
  const relay = conn.mode === 'embedded' ? createNativeRelay() : null
  const insertInto = await rowBinaryInserter(conn, join(opts.dataDir, 'spool'), {
    ackAfter, quorum: opts.insertQuorum ?? 2, ...(opts.beforeInsert === undefined ? {} : { beforeInsert: opts.beforeInsert }),
    ...(relay === null ? {} : { relay }),
  })
  const inserts = {} as Record<TableName, InsertFn>
  const presenceInsert = await insertInto('device_presence')
  // embedded: sequence numbers go into the replay-window file, once it exists (read now, or seeded once the logs are shipped, below)
  const windowsPath = join(opts.dataDir, 'replay-windows')
  let windowFile = conn.mode === 'embedded' ? await ReplayWindowFile.load(windowsPath, (why) => opts.onReplayWindowsDamaged?.(why)) : null
  // embedded: the node is its store's only writer, so it knows every head it inserted (answers GET /admin/tenants/:t/sequences)
  const storedHeads = conn.mode === 'embedded' ? new StoredHeads() : null
  for (const name of Object.keys(COLUMNS) as TableName[]) {
    const into = name === 'device_sequences' && conn.mode === 'embedded'
      ? sequencesInto(await insertInto(name), () => windowFile)
      : await insertInto(name)
    const insert: InsertFn = name === 'device_heads' && storedHeads !== null
      ? async (body, token) => { await into(body, token); storedHeads.recordRows(body) }
      : into
    // embedded, store: a PUBACK waits for the insert, so the insert returns once its part is on disk. Not
    // by fsync'ing it (a dozen files, on the one insert connection): by a syncfs after it, shared by the
    // inserts of every table that ended meanwhile, run by the helper while the connection goes on
    // (bench/ack-after.bench.ts, bench/RESULTS.md)
    const sync = syncParts
    inserts[name] = storeAck && sync !== undefined && STORED_BEFORE_ACK.has(name) ? async (body, token) => { await insert(body, token); await sync() } : insert
  }
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
      // the lane, and the log directory's own id (wal-id.ts): a new log (a lost disk) or another node never reuses a token
      tokenPrefix: `${lane === 'bulk' ? '' : `${lane}/`}${wal.id.id}/`,
    }
    const batchers = {} as Record<TableName, TableBatcher>
    for (const name of Object.keys(COLUMNS) as TableName[]) {
      // unlogged tables (refusals, security events) have their batcher in the bulk lane only
      if (lane === 'bulk' || LOGGED.has(name)) batchers[name] = new TableBatcher(name, inserts[name], batchOptions(name, opts.batch, ackAfter), onFlush, LOGGED.has(name) ? log : null)
    }
    return { lane, wal, recovered, batchers }
  }
  // the bulk lane keeps the log directory of earlier versions: what they logged (alarms too) ships from it
  const lanes: Record<Lane, LaneLog> = { bulk: await openLane('bulk', 'wal'), priority: await openLane('priority', 'wal-priority') }
  const all = [lanes.priority, lanes.bulk]
  let recoveredRows = 0
  for (const l of all) recoveredRows += await shipRecovered(l)
  await retireSequenceViews(conn) // only now: what the logs shipped above may be from before they were retired
  if (conn.mode === 'embedded') windowFile = await takeSequenceRows(conn, windowsPath, windowFile)
  if (storedHeads !== null) {
    // what earlier runs stored (and the recovered logs' heads just inserted, recorded as well)
    for (const h of await selectRows<{ tenant: string; device: string; top: string; at: string | number }>(conn,
      `SELECT tenant_id AS tenant, device_id AS device, toString(max(seq)) AS top, toUnixTimestamp64Milli(max(stored_at)) AS at FROM ${conn.table('device_heads')} GROUP BY tenant_id, device_id`)) {
      storedHeads.record(h.tenant, h.device, BigInt(h.top), Number(h.at))
    }
  }

  let backlogRows = 0
  const heads = lanes.bulk.batchers.device_heads
  /**
   * What follows a batch's insert, gathered from its messages so that a batch (not each message) has
   * the handlers: its bulk rows leave the backlog when it settles, its messages' heads are queued once
   * it is stored.
   */
  const following = new WeakMap<Promise<void>, { rows: number; heads: Buffer[] }>()
  const afterStored = (stored: Promise<void>): { rows: number; heads: Buffer[] } => {
    const known = following.get(stored)
    if (known !== undefined) return known
    const after = { rows: 0, heads: [] as Buffer[] }
    following.set(stored, after)
    void stored.then(() => {
      backlogRows -= after.rows
      for (const h of after.heads) void heads.add(h, 1)
    }, () => { backlogRows -= after.rows })
    return after
  }
  const flush = async (): Promise<void> => {
    for (const l of all) await Promise.all(Object.values(l.batchers).map((b) => b.drain()))
    // a message's head is queued only once its rows are stored (in write, below): those drained just above
    // queued theirs after the heads batcher was drained with them
    await heads.drain()
    for (const l of all) await l.wal.checkpointsWritten()
  }
  const acknowledgingIn = (lane: Lane): Acknowledging => {
    const { wal } = lanes[lane]
    const state = wal.state
    if (!state.writable) return { ok: false, code: state.code }
    if (wal.bytes > opts.wal.budgetBytes) return { ok: false, code: 'ING_ERR_BACKPRESSURE' }
    // store: while bulk inserts fail, bulk PUBACKs wait for them (the log holds the rows meanwhile)
    return storeAck && lane === 'bulk' && failing ? { ok: false, code: 'ING_ERR_STORAGE' } : { ok: true }
  }
  let closing: Promise<void> | null = null
  return {
    conn,
    insertPresence: (rows) => presenceInsert(rows, undefined),
    heads: storedHeads,
    write: (table, chunk, rows, sequence, lane = laneOf(table)) => {
      const { wal, batchers } = lanes[LOGGED.has(table) ? lane : 'bulk']
      const b = batchers[table]
      if (!LOGGED.has(table)) return b.add(chunk, rows)
      if (wal.bytes > opts.wal.budgetBytes) {
        return Promise.reject(new StorageError('ING_ERR_BACKPRESSURE', `write-ahead log over its budget of ${opts.wal.budgetBytes} bytes; storage is behind`))
      }
      const counted = lane === 'bulk' ? rows : 0
      backlogRows += counted
      // the rows and their sequence number go into the same group commit (the sequence's LSN is the next)
      const appended = sequence === undefined ? wal.append(table, rows, chunk) : wal.appendPair(table, rows, chunk, 'device_sequences', 1, sequence)
      return appended.then((lsn) => {
        // the batch retries until stored, and a batch promise carries its own catch (batcher.ts)
        const stored = b.add(chunk, rows, lsn)
        const after = afterStored(stored)
        after.rows += counted
        const awaited = storeAck && STORED_BEFORE_ACK.has(table)
        if (sequence !== undefined) {
          void batchers.device_sequences.add(sequence, 1, lsn + 1, awaited ? stored : undefined)
          // what is queryable: the message's head, once its rows are (a part every 250 ms, not one per insert)
          after.heads.push(sequence)
        }
        // log: acknowledged once in the log, the batch not awaited; store: once the batch is stored
        return awaited ? stored : undefined
      }, (err: unknown) => { backlogRows -= counted; throw err })
    },
    storedSequences: async () => {
      if (windowFile !== null) return windowFile.snapshot()
      const out = new Map<string, ReplayWindow>()
      for (const [device, s] of await loadSequences(conn)) out.set(device, ReplayWindow.restore(s.high, s.recent))
      return out
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
        newLog: lanes.bulk.wal.new && lanes.priority.wal.new,
        native: relay?.stats() ?? null,
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
        await relay?.close()
        await closeConnection(conn)
      })()
      return closing
    },
  }
}

/**
 * The device_sequences insert of embedded storage: into the replay-window file once there is one; into
 * the table until then (while the logs of an earlier version are shipped at start, so that the seed below
 * finds their numbers).
 */
function sequencesInto (table: InsertFn, file: () => ReplayWindowFile | null): InsertFn {
  return async (body, token) => {
    const f = file()
    await (f === null ? table(body, token) : f.insert(body))
  }
}

/**
 * Embedded, once the logs are shipped: the replay-window file (replay-windows.ts) takes in what
 * device_sequences holds (the rows of an earlier version, and those its views wrote from an earlier
 * version's log just shipped), and the table is emptied. Without a file the windows are seeded from
 * the table and, where a device's head is higher, closed at its head (device_heads).
 */
async function takeSequenceRows (conn: StorageConnection, path: string, file: ReplayWindowFile | null): Promise<ReplayWindowFile> {
  const rows = await loadSequences(conn)
  const seed = new Map<string, [string, string, ReplayWindow]>()
  for (const [device, s] of rows) seed.set(device, [device, s.tenant, ReplayWindow.restore(s.high, s.recent)])
  let taken: ReplayWindowFile
  if (file === null) {
    const heads = await selectRows<{ device: string; tenant: string; high: string }>(conn,
      `SELECT device_id AS device, any(tenant_id) AS tenant, toString(max(seq)) AS high FROM ${conn.table('device_heads')} GROUP BY device_id`)
    for (const h of heads) {
      const known = seed.get(h.device)
      if (known === undefined || known[2].high < BigInt(h.high)) seed.set(h.device, [h.device, h.tenant, ReplayWindow.closedAt(BigInt(h.high))])
    }
    taken = await ReplayWindowFile.create(path, seed.values())
  } else {
    taken = file
    if (rows.size > 0) await file.merge(seed.values())
  }
  // only once the file holding them is durable
  if (rows.size > 0) await conn.client.command({ query: `TRUNCATE TABLE ${conn.table('device_sequences')}` })
  return taken
}

/**
 * Re-inserts what the log holds beyond the checkpoint: announced batches as they were (under the
 * token they were announced with), then the rest; sequence rows after the rows they stand for.
 */
async function shipRecovered ({ lane, wal, recovered, batchers }: LaneLog): Promise<number> {
  let rows = 0
  const tables = [...recovered.records.keys()].sort((a, b) => Number(a === 'device_sequences') - Number(b === 'device_sequences'))
  // batches announced before the log had an id (an earlier version) carry none in their tokens
  const legacyPrefix = lane === 'bulk' ? '' : `${lane}/`
  for (const table of tables) {
    const records = recovered.records.get(table)!
    const b = batchers[table as TableName] as TableBatcher | undefined
    if (b === undefined) continue
    let rest = records
    for (const intent of recovered.intents.get(table) ?? []) {
      const inBatch = rest.filter((r) => r.lsn >= intent.first && r.lsn <= intent.last)
      rest = rest.filter((r) => r.lsn > intent.last || r.lsn < intent.first)
      if (inBatch.length === 0) continue
      const n = inBatch.reduce((s, r) => s + r.rows, 0)
      rows += n
      await b.replay(inBatch.map((r) => r.chunk), n, intent.first, intent.last, intent.lsn < wal.id.sinceLsn ? legacyPrefix : undefined)
    }
    // queued, then awaited together by drain(); a batch promise carries its own catch
    for (const r of rest) { rows += r.rows; void b.add(r.chunk, r.rows, r.lsn) }
    await b.drain()
  }
  return rows
}
