/**
 * Erasure that leaves nothing behind: the subject's rows are hidden at once
 * (lightweight DELETE), the logs the law makes us keep are copied under the
 * receipt's subject hash first, and the purge then removes every trace from
 * disk: the rows (APPLY DELETED MASK rewrites the parts), the parts they were
 * in before (outdated parts, removed once no query uses them), ClickHouse's
 * mutation records (mutation_*.txt, which hold each statement's text) and the
 * write-ahead log's segments.
 *
 * No statement of an erasure carries the patient id in its text: the id goes
 * into `erasure_set`, a Memory table (never on disk), as inserted data, and
 * every statement selects the subject with `patient_id IN (SELECT ... FROM
 * erasure_set WHERE erasure_id = '<uuid>')`. So the mutation records ClickHouse
 * writes (and a server's system.mutations and query log) name only a random
 * erasure id. Mutation records that named the patient before (a rectification,
 * an earlier withdrawal with erase) are removed by the purge: every patient
 * table gets a last mutation, and with `finished_mutations_to_keep = 1` the
 * older records go at the next cleanup.
 *
 * Tables are found in system.columns (every MergeTree table with tenant_id and
 * patient_id), so a table added later is covered without touching this file.
 *
 * On a ClickHouse cluster (VF_CLICKHOUSE_CLUSTER) the same steps run cluster-wide: the tables are
 * the Distributed ones sharded by tenant (from cluster-ddl.ts, with patient_id in system.columns);
 * counts and the pseudonymised copies go through the Distributed tables, after each replica has
 * fetched what the others have (SYSTEM SYNC REPLICA ... LIGHTWEIGHT), so the receipt counts every
 * row; every DELETE, UPDATE and purge rewrites the local tables ON CLUSTER and returns once every
 * replica has it; the subject is selected by its hash instead of a subject set (erasure-subject.ts
 * says why); the purge waits on every replica (cluster-purge.ts).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { VITAL_CATEGORIES } from '../catalogue/index.ts'
import { needsConsent, type Category } from '../consent/index.ts'
import type { Registry } from '../registry/index.ts'
import {
  CLUSTER_DDL_TIMEOUT_S, insertRows, localTable, rewriteSettings, rewriteTarget, runCommand, selectRows, shardedTables, type Storage,
} from '../storage/index.ts'
import { VitalflowError } from '../errors.ts'
import { purgeCluster } from './cluster-purge.ts'
import { subjectHash, subjectSet, type Subject } from './erasure-subject.ts'

export interface ErasureReceipt {
  receiptId: string
  tenant: string
  /** sha256(salt \0 tenant \0 patient), hex: whoever knows the patient id can check the receipt; it names nobody. */
  subjectHash: string
  salt: string
  scope: 'all' | Category[]
  requestedBy: string
  requestedAtMs: number
  /**
   * Rows per table: `table` erased, `table (pseudonymised)` kept under the subject hash,
   * `device_bindings (unbound)` binding history cleared; `devices (unbound)` counts devices.
   */
  rowCounts: Record<string, number>
  hiddenAtMs: number
  /** When nothing of the subject was left on disk (rows, old parts, mutation records, log segments); null while pending. */
  purgedAtMs: number | null
}

/** A copy of kept rows did not come out as counted: nothing was deleted. A bug, not a refusal. */
export class ErasureError extends VitalflowError<'ING_ERR_ERASURE'> {
  constructor (message: string) {
    super('ING_ERR_ERASURE', message)
  }
}

/**
 * Settings of every table that holds patient ids, so that what an erasure
 * removes leaves the disk within about a second: one finished mutation record
 * is kept (each holds its statement's text), and outdated parts are removed at
 * the next cleanup instead of after old_parts_lifetime (480 s on a server by
 * default; chDB runs with 0). The parts are fsync'd (migration 9), so the old
 * ones are no insurance against a power cut.
 */
const ERASURE_TABLE_SETTINGS = {
  finished_mutations_to_keep: 1,
  old_parts_lifetime: 0,
  cleanup_delay_period: 1,
  max_cleanup_delay_period: 1,
  cleanup_delay_period_random_add: 0,
} as const

/** Rows about a patient kept under a legal obligation: pseudonymised on erasure, not deleted. */
const PSEUDONYMISE: ReadonlySet<string> = new Set(['consent_events', 'legal_holds', 'restrictions', 'access_log'])
/** Binding history: the patient id becomes "nobody", so the time ranges stay and late data of that time is not misattributed. */
const UNBIND: ReadonlySet<string> = new Set(['devices', 'device_bindings'])

/** Where each consent-based category's values live, for erasure on withdrawal. */
export const CATEGORY_ROWS: Partial<Record<Category, { table: string; where: string; clear?: string }>> = {
  // the consent-based categories of vital_samples rows (vitals, sleep, activity), from the catalogue
  ...Object.fromEntries(VITAL_CATEGORIES.filter((c) => needsConsent(c)).map((c) => [c, { table: 'vital_samples', where: `category = '${c}'` }])),
  spot_measurements: { table: 'spot_measurements', where: '1' },
  // location rides on alarm events (contract): clear the coordinates, keep the alarm
  location: { table: 'alarm_events', where: 'latitude IS NOT NULL', clear: 'latitude = NULL, longitude = NULL, accuracy_m = NULL, location_consent_version = 0' },
}

const SYNC = { mutations_sync: '2' } as const

export interface ErasureOptions {
  /** How long a purge waits for ClickHouse to drop outdated parts and mutation records before it leaves the receipt pending. */
  purgeTimeoutMs?: number
  /** Polling interval of that wait. */
  pollMs?: number
}

export class Eraser {
  private readonly conn: Storage['conn']

  constructor (private readonly storage: Storage, private readonly registry: Registry, private readonly opts: ErasureOptions = {}) {
    this.conn = storage.conn
  }

  /** Every MergeTree table of the database with tenant_id and patient_id columns (on a cluster: every such table sharded by tenant). */
  async patientTables (): Promise<string[]> {
    if (this.conn.cluster !== undefined) {
      const rows = await selectRows<{ table: string }>(this.conn, `SELECT table FROM system.columns
        WHERE database = {db:String} AND table IN {tables:Array(String)} AND name IN ('tenant_id', 'patient_id')
        GROUP BY table HAVING count() = 2 ORDER BY table`, { db: this.conn.database, tables: shardedTables(this.conn) })
      return rows.map((r) => r.table)
    }
    const rows = await selectRows<{ table: string }>(this.conn,
      `SELECT c.table AS table FROM system.columns AS c INNER JOIN system.tables AS t ON c.database = t.database AND c.table = t.name
       WHERE c.database = {db:String} AND c.name IN ('tenant_id', 'patient_id') AND t.engine LIKE '%MergeTree%'
       GROUP BY c.table HAVING count() = 2 ORDER BY c.table`, { db: this.conn.database })
    return rows.map((r) => r.table)
  }

  /** Gives every patient table ERASURE_TABLE_SETTINGS (a table added later gets them at the next start). */
  async ensureTableSettings (): Promise<void> {
    const wanted = Object.entries(ERASURE_TABLE_SETTINGS).map(([k, v]) => `${k} = ${v}`)
    const engines = new Map((await selectRows<{ name: string; engine_full: string }>(this.conn,
      'SELECT name, engine_full FROM system.tables WHERE database = {db:String}', { db: this.conn.database })).map((r) => [r.name, r.engine_full]))
    for (const table of await this.patientTables()) {
      const engine = engines.get(localTable(this.conn, table).slice(this.conn.database.length + 1)) ?? ''
      if (wanted.every((w) => engine.includes(w))) continue
      const t = this.conn.table(table)
      await runCommand(this.conn, `ALTER TABLE ${rewriteTarget(this.conn, table)} MODIFY SETTING ${wanted.join(', ')}`, {}, rewriteSettings(this.conn))
      // the table's cleanup task keeps the period it was scheduled with (up to 5 minutes) until the
      // table is attached again (measured: first cleanup 30 s after the change, 1 s after a re-attach);
      // once per table in a data directory's life, at start. A server's other clients would see the
      // table vanish for a moment, so there the new period applies after the current one
      if (this.conn.mode === 'embedded') {
        await runCommand(this.conn, `DETACH TABLE ${t}`)
        await runCommand(this.conn, `ATTACH TABLE ${t}`)
      }
    }
  }

  /**
   * Erases a patient (categories undefined) or their consent-based data of the given categories.
   * The caller has checked that the patient exists and is not held. With purge, returns once
   * nothing is left on disk (or the wait timed out: purgedAtMs null, purgePending finishes it).
   */
  async erase (tenant: string, patient: string, requestedBy: string, categories: Category[] | undefined, purge: boolean): Promise<ErasureReceipt> {
    const requestedAtMs = Date.now()
    const eid = randomUUID()
    const salt = randomBytes(16).toString('hex')
    const subjectHashHex = createHash('sha256').update(`${salt}\0${tenant}\0${patient}`).digest('hex')
    const ids = { tenant, patient, eid, salt, subjectHash: subjectHashHex }
    const subject = this.conn.cluster === undefined ? subjectSet(this.conn, ids) : subjectHash(ids)
    const params = subject.params
    const who = subject.who()
    await subject.open()
    try {
      const rowCounts: Record<string, number> = {}
      if (categories === undefined) {
        await this.syncReplicas('devices', 'device_bindings')
        const [devices] = await selectRows<{ n: string }>(this.conn, `SELECT uniqExact(device_id) AS n FROM (
          SELECT device_id FROM ${this.conn.table('devices')} WHERE ${who} UNION ALL SELECT device_id FROM ${this.conn.table('device_bindings')} WHERE ${who})`, params)
        // stop new rows first, then let everything in flight land, then remove
        await this.registry.forgetPatient(tenant, patient)
        await this.storage.sealLog()
        for (const table of await this.patientTables()) await this.removeAll(table, subject, rowCounts)
        if (Number(devices?.n ?? 0) > 0) rowCounts['devices (unbound)'] = Number(devices!.n)
      } else {
        await this.storage.sealLog()
        for (const c of categories) {
          const spec = CATEGORY_ROWS[c]!
          await this.syncReplicas(spec.table)
          const n = await this.count(spec.table, `${who} AND ${spec.where}`, params)
          rowCounts[`${spec.table}:${c}`] = n
          if (n === 0) continue
          if (spec.clear !== undefined) await this.update(spec.table, spec.clear, `${who} AND ${spec.where}`, params)
          else await this.delete(spec.table, `${who} AND ${spec.where}`, params)
        }
      }
      const receipt: ErasureReceipt = {
        receiptId: randomUUID(), tenant, subjectHash: subjectHashHex, salt, scope: categories ?? 'all', requestedBy, requestedAtMs,
        rowCounts, hiddenAtMs: Date.now(), purgedAtMs: null,
      }
      await this.writeReceipt(receipt)
      if (purge) {
        // rows that were in flight when the log was sealed (read before the registry forgot the patient) land now
        await this.storage.sealLog()
        if (categories === undefined) for (const table of await this.patientTables()) await this.removeAll(table, subject, rowCounts)
        if (await this.purge()) {
          receipt.purgedAtMs = Date.now()
          await this.writeReceipt(receipt)
        }
      }
      return receipt
    } finally {
      await subject.close()
    }
  }

  /** A lightweight DELETE: on a cluster of the local table ON CLUSTER, returning once every replica has it. */
  private async delete (table: string, where: string, params: Record<string, unknown>): Promise<void> {
    await runCommand(this.conn, `DELETE FROM ${rewriteTarget(this.conn, table)} WHERE ${where}`, params, rewriteSettings(this.conn))
  }

  /** An ALTER ... UPDATE waited for on every replica. */
  private async update (table: string, assignments: string, where: string, params: Record<string, unknown>): Promise<void> {
    await runCommand(this.conn, `ALTER TABLE ${rewriteTarget(this.conn, table)} UPDATE ${assignments} WHERE ${where}`, params, rewriteSettings(this.conn, SYNC))
  }

  /**
   * On a cluster, before a count through a Distributed table: every replica fetches the parts the
   * others have (an insert with a quorum of 2 is acknowledged before the third replica has it, and a
   * Distributed read may pick that one). One server: nothing to do.
   */
  private async syncReplicas (...tables: string[]): Promise<void> {
    if (this.conn.cluster === undefined) return
    for (const table of tables) {
      await runCommand(this.conn, `SYSTEM SYNC REPLICA ON CLUSTER ${this.conn.cluster} ${localTable(this.conn, table)} LIGHTWEIGHT`, {},
        { distributed_ddl_task_timeout: String(CLUSTER_DDL_TIMEOUT_S) })
    }
  }

  private async count (table: string, where: string, params: Record<string, unknown>): Promise<number> {
    return Number((await selectRows<{ n: string }>(this.conn, `SELECT count() AS n FROM ${this.conn.table(table)} WHERE ${where}`, params))[0]?.n ?? 0)
  }

  /** Removes (kept tables: copies under the hash, then removes; binding tables: unbinds) the subject's rows of one table. */
  private async removeAll (table: string, subject: Subject, rowCounts: Record<string, number>): Promise<void> {
    const { params } = subject
    const who = subject.who()
    await this.syncReplicas(table)
    const n = await this.count(table, who, params)
    if (n === 0) return
    const t = this.conn.table(table)
    const add = (k: string): void => { rowCounts[k] = (rowCounts[k] ?? 0) + n }
    if (PSEUDONYMISE.has(table)) {
      const copied = async (): Promise<number> => await this.count(table, 'tenant_id = {tenant:String} AND patient_id = {hash:String}', params)
      const had = await copied()
      // the column is qualified: an unqualified patient_id in WHERE would be the REPLACE alias (the hash), and nothing would be copied.
      // On a cluster both sides are the Distributed table: the copies keep the tenant, so they land on its shard
      await runCommand(this.conn, `INSERT INTO ${t} SELECT * REPLACE ({hash:String} AS patient_id) FROM ${t} AS src
        WHERE ${subject.who('src')}`, params, this.conn.cluster === undefined ? {} : { distributed_foreground_insert: '1' })
      await this.syncReplicas(table)
      const got = await copied() - had
      if (got !== n) throw new ErasureError(`pseudonymised copy of ${table} has ${got} rows where ${n} were counted; nothing was deleted`)
      add(`${table} (pseudonymised)`)
      await this.delete(table, who, params)
    } else if (UNBIND.has(table)) {
      if (table !== 'devices') add(`${table} (unbound)`)
      await this.update(table, "patient_id = ''", who, params)
    } else {
      add(table)
      await this.delete(table, who, params)
    }
  }

  /** Purges what erasures hid but did not yet remove physically (after a crash, a timed-out purge, or purge: false). */
  async purgePending (): Promise<number> {
    const t = this.conn.table
    const pending = await selectRows<{ receipt_id: string; tenant_id: string }>(this.conn, `SELECT receipt_id, tenant_id FROM ${t('erasure_receipts')} FINAL WHERE purged_at IS NULL`)
    if (pending.length === 0) return 0
    await this.storage.sealLog()
    if (!await this.purge()) return 0
    for (const p of pending) {
      const where = 'WHERE receipt_id = {id:String} AND tenant_id = {tenant:String}'
      if (this.conn.cluster === undefined) {
        await runCommand(this.conn, `ALTER TABLE ${t('erasure_receipts')} UPDATE purged_at = now64(3) ${where}`, { id: p.receipt_id, tenant: p.tenant_id }, SYNC)
      } else {
        // a Replicated table's mutation must be deterministic: the time goes in as a value, not now64()
        await this.update('erasure_receipts', 'purged_at = fromUnixTimestamp64Milli({at:Int64})', where.slice('WHERE '.length),
          { id: p.receipt_id, tenant: p.tenant_id, at: Date.now() })
      }
    }
    return pending.length
  }

  /**
   * Rewrites every patient table without its deleted rows, then waits until ClickHouse has
   * dropped the parts from before and every mutation record older than that rewrite (which may
   * name a patient: a rectification's, an earlier withdrawal's). False if that took longer than
   * purgeTimeoutMs.
   */
  private async purge (): Promise<boolean> {
    const tables = await this.patientTables()
    if (this.conn.cluster !== undefined) return await purgeCluster(this.conn, tables, { timeoutMs: this.opts.purgeTimeoutMs ?? 600_000, pollMs: this.opts.pollMs ?? 100 })
    const last = new Map<string, number>()
    for (const table of tables) {
      await runCommand(this.conn, `ALTER TABLE ${this.conn.table(table)} APPLY DELETED MASK`, {}, SYNC)
      const [m] = await selectRows<{ n: string }>(this.conn, `SELECT max(toUInt64OrZero(extract(mutation_id, '(\\\\d+)'))) AS n FROM system.mutations
        WHERE database = {db:String} AND table = {table:String}`, { db: this.conn.database, table })
      last.set(table, Number(m?.n ?? 0))
    }
    const deadline = Date.now() + (this.opts.purgeTimeoutMs ?? 600_000)
    for (;;) {
      const left = await this.leftovers(last)
      if (left === 0) return true
      if (Date.now() > deadline) return false
      await new Promise((resolve) => setTimeout(resolve, this.opts.pollMs ?? 100))
    }
  }

  /**
   * Outdated parts and mutation records older than each table's purge mutation. A part whose
   * data version is below it was not rewritten by it; outdated parts merged from newer ones
   * (under ingest there always are some) hold nothing erased and are not waited for.
   */
  private async leftovers (last: Map<string, number>): Promise<number> {
    const db = this.conn.database
    const tables = [...last.keys()]
    const parts = await selectRows<{ table: string; v: string }>(this.conn, `SELECT table, toString(data_version) AS v FROM system.parts
      WHERE database = {db:String} AND table IN {tables:Array(String)} AND active = 0`, { db, tables })
    const mutations = await selectRows<{ table: string; n: string }>(this.conn, `SELECT table, toString(toUInt64OrZero(extract(mutation_id, '(\\\\d+)'))) AS n FROM system.mutations
      WHERE database = {db:String} AND table IN {tables:Array(String)}`, { db, tables })
    const older = (table: string, version: string): boolean => Number(version) < (last.get(table) ?? 0)
    return parts.filter((p) => older(p.table, p.v)).length + mutations.filter((m) => older(m.table, m.n)).length
  }

  private async writeReceipt (r: ErasureReceipt): Promise<void> {
    await insertRows(this.conn, 'erasure_receipts', [{
      receipt_id: r.receiptId, tenant_id: r.tenant, subject_hash: r.subjectHash, salt: r.salt, scope: r.scope === 'all' ? 'all' : r.scope.join(','),
      requested_by: r.requestedBy, requested_at: r.requestedAtMs, row_counts: r.rowCounts, hidden_at: r.hiddenAtMs, purged_at: r.purgedAtMs,
    }])
  }

  async receipts (tenant: string): Promise<Array<Record<string, unknown>>> {
    return await selectRows(this.conn, `SELECT receipt_id, subject_hash, salt, scope, requested_by, toUnixTimestamp64Milli(requested_at) AS requested_ms, row_counts,
      toUnixTimestamp64Milli(hidden_at) AS hidden_ms, toUnixTimestamp64Milli(purged_at) AS purged_ms FROM ${this.conn.table('erasure_receipts')} FINAL
      WHERE tenant_id = {tenant:String} ORDER BY requested_at`, { tenant })
  }
}
