/**
 * The schema as a ClickHouse cluster, generated from the same MIGRATIONS the node applies to one
 * server (never a hand-kept copy). Every statement runs ON CLUSTER, so an operator applies the whole
 * script once, on any one node:
 *
 *   - a table with a tenant_id column becomes `<table>_local`, Replicated* of its own engine, with
 *     its replicas under /clickhouse/tables/{shard}/<db>/<table> in Keeper, and a Distributed table
 *     under today's name, sharded by cityHash64(tenant_id): a tenant's rows, and every version of a
 *     ReplacingMergeTree key (which starts with tenant_id), live on one shard;
 *   - a table without one (the platform's own bookkeeping) is replicated to every node: one Keeper
 *     path for all shards, read and written under its own name;
 *   - a Memory table is created on every node and stays that node's own;
 *   - materialized views read and write the local tables (a row and the rows its views make land on
 *     the same shard); ALTERs go to the local tables, and column changes to the Distributed twin too;
 *   - a table the retention policy covers is created with the TTL a node's first start writes on one
 *     server (the policy's periods, no tenant's own, no holds), recorded in retention_applied so a
 *     node does not try MODIFY TTL on the Distributed table (refused); a node added later gets the
 *     TTL with its tables, and no existing part is rewritten;
 *   - the applied versions are recorded in schema_migrations, so a node started against the cluster
 *     finds nothing left to migrate.
 *
 * A statement of a kind not listed here stops the generator (ClusterDdlError) instead of passing
 * through untranslated: a new migration must be handled here before it can reach a cluster.
 *
 * Keeper paths name the database and table rather than {uuid}: re-running the script for a rebuilt
 * replica then creates the table under the same path, and the replica fetches its shard's data;
 * with {uuid} it would start a new, empty replica group of its own.
 */
import { POLICY, RETENTION_TABLES, retentionDigest, retentionTtls, type Policy } from '../consent/index.ts'
import { VitalflowError } from '../errors.ts'
import { sqlString } from '../sql.ts'
import { schemaMigrationsDdl } from './migrate.ts'
import { MIGRATIONS, type Migration } from './schema.ts'

export class ClusterDdlError extends VitalflowError<'ING_ERR_CLUSTER_DDL'> {
  constructor (message: string) {
    super('ING_ERR_CLUSTER_DDL', message)
  }
}

/** sharded: by tenant over the shards; everywhere: one replica group over every node; per-node: each node its own. */
export type Placement = 'sharded' | 'everywhere' | 'per-node'

export interface ClusterTable {
  /** The name the node reads and writes (the Distributed table, for a sharded one). */
  name: string
  /** The table that holds the rows on each node. */
  local: string
  placement: Placement
  /** The local table's engine as generated, without its arguments. */
  engine: string
  /** The migration that created it. */
  version: number
}

export interface ClusterView { name: string; target: string; sources: string[]; version: number }

/** A migration statement with no place in a new cluster, and why. */
export interface SkippedStatement { version: number; statement: string; why: string }

export interface ClusterDdl {
  cluster: string
  database: string
  /** In order; each one statement, without the trailing semicolon. */
  statements: string[]
  tables: ClusterTable[]
  views: ClusterView[]
  skipped: SkippedStatement[]
  /** The versions recorded as applied by the last statement. */
  versions: number[]
}

export interface ClusterDdlOptions {
  database: string
  /** A cluster of the servers' remote_servers section. */
  cluster: string
  /** Only migrations after this version (a cluster that has the earlier ones); 0 = all. */
  after?: number
  /** Default: the schema's MIGRATIONS. */
  migrations?: readonly Migration[]
  /** Whose retention periods a new cluster starts with; default: POLICY (the node's). */
  policy?: Policy
}

/** Where a sharded table's rows go; tenant_id also starts every sharded table's ORDER BY. */
export const SHARDING_KEY = 'cityHash64(tenant_id)'
export const LOCAL_SUFFIX = '_local'
/**
 * A Replicated table remembers inserted blocks for deduplication in Keeper, by default only for an
 * hour. The write-ahead log re-inserts a batch under its own token after a crash, however long the
 * node was down: keep the tokens for a week, as the single server keeps its last 10,000 without a limit.
 */
export const DEDUPLICATION_SECONDS = 7 * 86_400

/** A plain MergeTree table's settings and what says the same on a Replicated one. */
const REPLICATED_SETTING: Readonly<Record<string, (value: string) => string>> = {
  non_replicated_deduplication_window: (v) => `replicated_deduplication_window = ${v}, replicated_deduplication_window_seconds = ${DEDUPLICATION_SECONDS}`,
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const CREATE_TABLE = /^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+) \(([\s\S]*)\)\s*ENGINE = (\w+)(?:\(([^()]*)\))?(?=\s|$)([\s\S]*)$/
const CREATE_VIEW = /^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\.(\w+) TO (\w+)\.(\w+)(\s+AS\s[\s\S]*)$/
const ALTER = /^ALTER TABLE (\w+)\.(\w+) ([\s\S]+)$/
const BACKFILL = /^INSERT INTO (\w+)\.(\w+) SELECT\s/
const COLUMN_CHANGE = /^(?:ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR) COLUMN\s/
const MODIFY_SETTING = /^MODIFY SETTING ([\s\S]+)$/

export function clusterDdl (options: ClusterDdlOptions): ClusterDdl {
  const { database: db, cluster } = options
  if (!NAME.test(db) || !NAME.test(cluster)) throw new ClusterDdlError('database and cluster names must match [A-Za-z_][A-Za-z0-9_]*')
  const after = options.after ?? 0
  const on = `ON CLUSTER ${cluster}`
  const ttls = retentionTtls({ policy: options.policy ?? POLICY, overrides: new Map(), holds: [] })
  /** Retention tables whose CREATE is in the script, by migration version. */
  const withTtl: Array<{ name: string; version: number }> = []
  const tables = new Map<string, ClusterTable>()
  const views: ClusterView[] = []
  const skipped: SkippedStatement[] = []
  const statements: string[] = [`CREATE DATABASE IF NOT EXISTS ${db} ${on}`]

  const known = (name: string, version: number, what: string): ClusterTable => {
    const t = tables.get(name)
    if (t === undefined) throw new ClusterDdlError(`migration ${version}: ${what} names ${db}.${name}, which no earlier migration created`)
    return t
  }

  const createTable = (statement: string, version: number): string[] => {
    const m = CREATE_TABLE.exec(statement)
    if (m === null) throw new ClusterDdlError(`migration ${version}: a CREATE TABLE this generator cannot read: ${head(statement)}`)
    const [, inDb, name, columns, engine, args, rest] = m as unknown as [string, string, string, string, string, string | undefined, string]
    if (inDb !== db) throw new ClusterDdlError(`migration ${version}: ${inDb}.${name} is outside database ${db}`)
    const tenanted = /(?:^|[(,\n])\s*tenant_id\s/.test(columns)
    if (engine === 'Memory') {
      tables.set(name, { name, local: name, placement: 'per-node', engine, version })
      return [`CREATE TABLE IF NOT EXISTS ${db}.${name} ${on} (${columns}) ENGINE = Memory${rest}`]
    }
    if (!/^\w*MergeTree$/.test(engine) || engine.startsWith('Replicated')) {
      throw new ClusterDdlError(`migration ${version}: ${name} has engine ${engine}; only plain MergeTree-family and Memory tables are translated`)
    }
    const replicated = `Replicated${engine}`
    const placement: Placement = tenanted ? 'sharded' : 'everywhere'
    const local = tenanted ? name + LOCAL_SUFFIX : name
    const path = `/clickhouse/tables/${tenanted ? '{shard}' : 'all'}/${db}/${name}`
    const engineArgs = [sqlString(path), sqlString('{replica}'), ...(args === undefined || args.trim() === '' ? [] : [args])].join(', ')
    if (tenanted && /\bORDER BY \(?\s*(\w+)/.exec(rest)?.[1] !== 'tenant_id') {
      throw new ClusterDdlError(`migration ${version}: ${name} has a tenant_id but its ORDER BY does not start with it`)
    }
    tables.set(name, { name, local, placement, engine: replicated, version })
    let keys = rest
    const ttl = Object.hasOwn(RETENTION_TABLES, name) ? ttls[name] : undefined
    if (ttl !== undefined) {
      if (/\bTTL\b/.test(rest)) throw new ClusterDdlError(`migration ${version}: ${name} has a TTL of its own; retention is the policy's`)
      // TTL comes after ORDER BY and before SETTINGS
      const settings = /\sSETTINGS\s/.exec(rest)
      keys = settings === null ? `${rest}\nTTL ${ttl}` : `${rest.slice(0, settings.index)}\nTTL ${ttl}${rest.slice(settings.index)}`
      withTtl.push({ name, version })
    }
    const out = [`CREATE TABLE IF NOT EXISTS ${db}.${local} ${on} (${columns}) ENGINE = ${replicated}(${engineArgs})${keys}`]
    if (tenanted) {
      out.push(`CREATE TABLE IF NOT EXISTS ${db}.${name} ${on} AS ${db}.${local} ENGINE = Distributed(${[cluster, db, local].map(sqlString).join(', ')}, ${SHARDING_KEY})`)
    }
    return out
  }

  const createView = (statement: string, version: number): string[] => {
    const m = CREATE_VIEW.exec(statement)
    if (m === null) throw new ClusterDdlError(`migration ${version}: a materialized view this generator cannot read: ${head(statement)}`)
    const [, , name, , targetName, body] = m as unknown as [string, string, string, string, string, string]
    const target = known(targetName, version, `view ${name}`)
    const sources: ClusterTable[] = []
    const localBody = body.replace(new RegExp(`\\b${db}\\.(\\w+)\\b`, 'g'), (_, t: string) => {
      const source = known(t, version, `view ${name}`)
      sources.push(source)
      return `${db}.${source.local}`
    })
    // a view runs where its source's rows are inserted: both must be sharded alike for its rows to land beside them
    for (const t of [target, ...sources]) {
      if (t.placement !== 'sharded') throw new ClusterDdlError(`migration ${version}: view ${name} reads or writes ${t.name}, which is not sharded by tenant`)
    }
    views.push({ name, target: target.name, sources: sources.map((t) => t.name), version })
    return [`CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${name} ${on} TO ${db}.${target.local}${localBody}`]
  }

  const alter = (statement: string, version: number): string[] => {
    const m = ALTER.exec(statement)
    if (m === null) throw new ClusterDdlError(`migration ${version}: an ALTER this generator cannot read: ${head(statement)}`)
    const [, , name, command] = m as unknown as [string, string, string, string]
    const t = known(name, version, 'ALTER')
    if (COLUMN_CHANGE.test(command)) {
      // the Distributed table has the columns too; it changes after the tables under it
      const out = [`ALTER TABLE ${db}.${t.local} ${on} ${command}`]
      if (t.local !== t.name) out.push(`ALTER TABLE ${db}.${t.name} ${on} ${command}`)
      return out
    }
    if (/^MATERIALIZE COLUMN /.test(command)) {
      skipped.push({ version, statement, why: 'writes a new column\'s default into parts that exist; a new cluster has none' })
      return []
    }
    const settings = MODIFY_SETTING.exec(command)
    if (settings !== null && t.placement !== 'per-node') {
      const translated = settings[1]!.split(',').map((s) => {
        const [key, value] = s.split('=').map((x) => x.trim()) as [string, string | undefined]
        if (value === undefined) throw new ClusterDdlError(`migration ${version}: cannot read setting ${s.trim()}`)
        return REPLICATED_SETTING[key]?.(value) ?? `${key} = ${value}`
      })
      return [`ALTER TABLE ${db}.${t.local} ${on} MODIFY SETTING ${translated.join(', ')}`]
    }
    throw new ClusterDdlError(`migration ${version}: ALTER ${name} ${head(command)}: not translated for a cluster`)
  }

  const translate = (statement: string, version: number): string[] => {
    const s = statement.trim()
    if (s.startsWith('CREATE TABLE ')) return createTable(s, version)
    if (s.startsWith('CREATE MATERIALIZED VIEW ')) return createView(s, version)
    if (s.startsWith('ALTER TABLE ')) return alter(s, version)
    const backfill = BACKFILL.exec(s)
    if (backfill !== null) {
      known(backfill[2]!, version, 'INSERT')
      skipped.push({ version, statement: s, why: 'copies rows between tables; a new cluster has none to copy' })
      return []
    }
    throw new ClusterDdlError(`migration ${version}: ${head(s)}: not translated for a cluster`)
  }

  statements.push(...translate(schemaMigrationsDdl(db), 0))
  const migrations = options.migrations ?? MIGRATIONS
  const versions: number[] = []
  for (const m of migrations) {
    const out = m.statements(db).flatMap((s) => translate(s, m.version))
    if (m.version <= after) continue
    statements.push(...out)
    versions.push(m.version)
  }
  const missing = Object.keys(RETENTION_TABLES).filter((t) => !tables.has(t))
  if (missing.length > 0) throw new ClusterDdlError(`the retention policy covers ${missing.join(', ')}, which no migration creates`)
  const recorded = withTtl.filter((t) => t.version > after)
  if (recorded.length > 0) {
    if (tables.get('retention_applied')?.placement !== 'everywhere') throw new ClusterDdlError('retention_applied must be replicated to every node')
    // replicated to every node, as schema_migrations below: one INSERT, no ON CLUSTER
    statements.push(`INSERT INTO ${db}.retention_applied (table_name, ttl, applied_at) VALUES ${recorded.map(({ name }) =>
      `(${sqlString(name)}, ${sqlString(retentionDigest(ttls[name]!))}, now64(3))`).join(', ')}`)
  }
  if (versions.length > 0) {
    // replicated to every node (one Keeper path): one INSERT reaches them all, so it has no ON CLUSTER
    const names = new Map(migrations.map((m) => [m.version, m.name]))
    statements.push(`INSERT INTO ${db}.schema_migrations (version, name) VALUES ${versions.map((v) => `(${v}, ${sqlString(names.get(v)!)})`).join(', ')}`)
  }
  return { cluster, database: db, statements, tables: [...tables.values()], views, skipped: skipped.filter((s) => s.version > after), versions }
}

/** The statements as a script for `clickhouse-client --queries-file`, with what was left out as comments. */
export function clusterDdlScript (ddl: ClusterDdl): string {
  const lines = [
    `-- vitalflow schema on ClickHouse cluster ${ddl.cluster}, database ${ddl.database}: migrations ${ddl.versions.length === 0 ? 'none' : ddl.versions.join(', ')}`,
    '-- generated from src/storage/schema.ts (npm run admin -- storage cluster-ddl); apply once, on any one node of the cluster',
    ...ddl.skipped.map((s) => `-- not applied, migration ${s.version} (${s.why}): ${head(s.statement)}`),
    '',
  ]
  return lines.join('\n') + ddl.statements.map((s) => `${s};`).join('\n\n') + '\n'
}

function head (statement: string): string {
  const line = statement.split('\n')[0]!.trim()
  return line.length > 120 ? `${line.slice(0, 117)}...` : line
}
