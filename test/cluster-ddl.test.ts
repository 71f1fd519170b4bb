/**
 * The cluster DDL (src/storage/cluster-ddl.ts). No ClickHouse cluster runs here, so every generated
 * statement is parsed by ClickHouse itself (formatQuery in chDB), and its structure is read from
 * ClickHouse's formatting of it; the tables it covers are checked against the tables chDB has after
 * applying the same MIGRATIONS (engine, columns, sorting and partition keys), so a migration that adds
 * or changes a table the generator does not carry over fails here.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type StorageConnection } from '../src/storage/connection.ts'
import { POLICY, RETENTION_TABLES } from '../src/consent/index.ts'
import { TenantRetention } from '../src/rights/tenant-retention.ts'
import { migrate, schemaMigrationsDdl } from '../src/storage/migrate.ts'
import {
  ClusterDdlError, DASHBOARD_TABLES, MIGRATIONS, SHARDING_KEY, clusterDdl, clusterDdlScript, clusterTenantAccessDdl, type ClusterDdl,
} from '../src/storage/index.ts'
import type { Migration } from '../src/storage/schema.ts'
import { tempDir } from './support/node.ts'

const run = promisify(execFile)
const DB = 'vitalflow'
let dir: ReturnType<typeof tempDir>
let conn: StorageConnection

beforeAll(async () => {
  dir = tempDir()
  conn = await connect({ dataDir: dir.path, database: DB })
  await migrate(conn)
}, 60_000)
afterAll(async () => {
  await conn?.client.close()
  dir?.remove()
})

async function rows<T> (query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await conn.client.query({ query, query_params: params, format: 'JSONEachRow' })
  return await rs.json<T>()
}

/** ClickHouse's own formatting of a statement: it throws unless ClickHouse parses it. */
async function format (statement: string): Promise<string> {
  return (await rows<{ f: string }>('SELECT formatQuery({q:String}) AS f', { q: statement }))[0]!.f
}

interface Created {
  name: string
  onCluster: string | undefined
  columns: Map<string, string>
  as: string | undefined
  engine: string
  engineArgs: string
  orderBy: string | undefined
  partitionBy: string | undefined
  settings: string[]
}

/** A formatted CREATE TABLE read back: name, columns (name → type), engine, keys, settings. */
function readCreate (formatted: string): Created {
  const head = /^CREATE TABLE IF NOT EXISTS (\w+\.\w+)(?: ON CLUSTER (\w+))?(?: AS (\w+\.\w+))?$/m.exec(formatted.split('\n')[0]!)
  if (head === null) throw new Error(`not a CREATE TABLE: ${formatted.slice(0, 80)}`)
  const columns = new Map<string, string>()
  for (const m of formatted.matchAll(/^ {4}`(\w+)` (.+?)(?: (?:DEFAULT|MATERIALIZED|ALIAS|COMMENT|CODEC|TTL)\b.*)?,?$/gm)) columns.set(m[1]!, m[2]!.replace(/,$/, ''))
  const engine = /^ENGINE = (\w+)(?:\((.*)\))?$/m.exec(formatted)
  if (engine === null) throw new Error(`no engine: ${formatted}`)
  return {
    name: head[1]!, onCluster: head[2], as: head[3], columns, engine: engine[1]!, engineArgs: engine[2] ?? '',
    orderBy: /^ORDER BY (.+)$/m.exec(formatted)?.[1], partitionBy: /^PARTITION BY (.+)$/m.exec(formatted)?.[1],
    settings: (/^SETTINGS (.+)$/m.exec(formatted)?.[1] ?? '').split(', ').filter((s) => s !== '').map((s) => s.split(' = ')[0]!),
  }
}

const firstLine = (s: string): string => s.split('\n')[0]!
/** `(a, b)` or `a` → 'a, b' / 'a', as system.tables writes sorting keys. */
const keyList = (k: string | undefined): string => (k ?? '').replace(/^\((.*)\)$/, '$1')

describe('cluster DDL from MIGRATIONS', () => {
  const cases = [{ database: DB, cluster: 'vitalflow' }, { database: 'vf_prod', cluster: 'prod_2' }]
  const formatted = new Map<string, string[]>()
  const ddls = new Map<string, ClusterDdl>()
  beforeAll(async () => {
    for (const c of cases) {
      const ddl = clusterDdl(c)
      ddls.set(c.cluster, ddl)
      const out: string[] = []
      for (const s of ddl.statements) out.push(await format(s))
      formatted.set(c.cluster, out)
    }
  }, 60_000)

  it('every statement is valid ClickHouse (formatQuery), and all but two records run ON CLUSTER', () => {
    for (const { cluster } of cases) {
      const statements = formatted.get(cluster)!
      expect(statements.length).toBeGreaterThan(60)
      const inserts = statements.filter((s) => s.startsWith('INSERT'))
      expect(inserts.map((s) => /^INSERT INTO \w+\.(\w+)/.exec(s)?.[1])).toEqual(['retention_applied', 'schema_migrations'])
      expect(statements.at(-1)).toBe(inserts.at(-1))
      for (const s of statements.filter((x) => !x.startsWith('INSERT'))) expect(firstLine(s), s).toMatch(new RegExp(`\\bON CLUSTER ${cluster}( |$)`))
      // the statements without ON CLUSTER write to tables replicated to every node, so one INSERT reaches all
      const placed = new Map(ddls.get(cluster)!.tables.map((t) => [t.name, t.placement]))
      expect([placed.get('retention_applied'), placed.get('schema_migrations')]).toEqual(['everywhere', 'everywhere'])
    }
  })

  it('a node started against the new cluster finds nothing to migrate and no TTL to rewrite', async () => {
    const ddl = ddls.get('vitalflow')!
    const record = (table: string): string => ddl.statements.find((s) => s.startsWith(`INSERT INTO ${DB}.${table} `))!
    // schema_migrations as the cluster has it after the script, in a database of its own: migrate() applies nothing
    await conn.client.command({ query: 'CREATE DATABASE fresh' })
    const fresh: StorageConnection = { ...conn, database: 'fresh', table: (n) => `fresh.${n}` }
    await conn.client.command({ query: schemaMigrationsDdl('fresh') })
    await conn.client.command({ query: record('schema_migrations').replace(`${DB}.`, 'fresh.') })
    expect(await migrate(fresh)).toEqual([])
    // the TTLs: what a node's first start writes on one server (TenantRetention.apply), the cluster's local tables are created with
    await conn.client.command({ query: 'CREATE DATABASE single' })
    const single: StorageConnection = { ...conn, database: 'single', table: (n) => `single.${n}` }
    await migrate(single)
    await (await TenantRetention.load(single, POLICY)).apply([])
    const written = await rows<{ name: string; q: string }>("SELECT name, create_table_query AS q FROM system.tables WHERE database = 'single'")
    const ttlOf = async (create: string): Promise<string | undefined> =>
      /\bTTL (.+?)(?: SETTINGS .*)?$/.exec((await rows<{ f: string }>('SELECT formatQuerySingleLine({q:String}) AS f', { q: create }))[0]!.f)?.[1]
    for (const table of Object.keys(RETENTION_TABLES)) {
      const onOneServer = await ttlOf(written.find((w) => w.name === table)!.q)
      expect(onOneServer, table).toMatch(/toIntervalDay/)
      expect(await ttlOf(ddl.statements.find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS ${DB}.${table}_local `))!), table).toBe(onOneServer)
    }
    // and retention_applied as the script leaves it: the node's start rewrites no table's TTL (it would record each one it wrote)
    await conn.client.command({ query: record('retention_applied') })
    const before = await rows<{ n: string }>(`SELECT count() AS n FROM ${DB}.retention_applied`)
    await (await TenantRetention.load(conn, POLICY)).apply([])
    expect(await rows<{ n: string }>(`SELECT count() AS n FROM ${DB}.retention_applied`)).toEqual(before)
    expect(Number(before[0]!.n)).toBe(Object.keys(RETENTION_TABLES).length)
    expect(ddl.statements.filter((s) => / MODIFY TTL /.test(s))).toEqual([])
    // a cluster that has migration 1 gets the TTLs of the retention tables created after it, and records only those
    const later = clusterDdl({ database: DB, cluster: 'vitalflow', after: 1 }).statements
    expect(later.filter((s) => /\nTTL /.test(s)).map((s) => /^CREATE TABLE IF NOT EXISTS \w+\.(\w+) /.exec(s)?.[1])).toEqual(['security_events_local', 'access_log_local'])
    expect([...later.find((s) => s.startsWith(`INSERT INTO ${DB}.retention_applied`))!.matchAll(/\('(\w+)', '/g)].map((m) => m[1])).toEqual(['security_events', 'access_log'])
  })

  it('every MergeTree-family table became Replicated*, with its own Keeper path per shard and {replica}', () => {
    for (const { database, cluster } of cases) {
      const created = formatted.get(cluster)!.filter((s) => s.startsWith('CREATE TABLE')).map(readCreate)
      const paths = new Set<string>()
      for (const t of created.filter((c) => c.engine !== 'Distributed' && c.engine !== 'Memory')) {
        expect(t.engine, t.name).toMatch(/^Replicated\w*MergeTree$/)
        const args = /^'([^']+)', '([^']+)'/.exec(t.engineArgs)
        expect(args, t.name).not.toBeNull()
        const [, path, replica] = args!
        expect(replica).toBe('{replica}')
        const table = t.name.split('.')[1]!.replace(/_local$/, '')
        expect(path).toBe(t.name.endsWith('_local') ? `/clickhouse/tables/{shard}/${database}/${table}` : `/clickhouse/tables/all/${database}/${table}`)
        expect(paths.has(path!), `${path!} used twice`).toBe(false)
        paths.add(path!)
      }
      expect(created.every((c) => c.onCluster === cluster)).toBe(true)
    }
  })

  it('every sharded table has a Distributed twin under its own name, sharded by tenant, and its ORDER BY starts with tenant_id', () => {
    for (const { database, cluster } of cases) {
      const created = new Map(formatted.get(cluster)!.filter((s) => s.startsWith('CREATE TABLE')).map(readCreate).map((c) => [c.name, c]))
      const locals = [...created.values()].filter((c) => c.name.endsWith('_local'))
      expect(locals.length).toBeGreaterThan(20)
      for (const local of locals) {
        expect(local.columns.has('tenant_id'), local.name).toBe(true)
        expect(local.orderBy, local.name).toMatch(/^\(?tenant_id\b/)
        const twin = created.get(local.name.replace(/_local$/, ''))
        expect(twin, `${local.name} has no Distributed twin`).toBeDefined()
        expect(twin!.engine).toBe('Distributed')
        expect(twin!.as).toBe(local.name)
        expect(twin!.engineArgs).toBe(`'${cluster}', '${database}', '${local.name.split('.')[1]!}', ${SHARDING_KEY}`)
      }
      // the rest: tenant-less bookkeeping replicated everywhere, and Memory tables (each node its own)
      const others = [...created.values()].filter((c) => !c.name.endsWith('_local') && c.engine !== 'Distributed')
      for (const t of others) expect(t.columns.has('tenant_id') ? t.engine : 'no tenant', t.name).toMatch(/^(Memory|no tenant)$/)
    }
  })

  it('materialized views read and write the local tables; ALTERs go to local tables (columns to the Distributed twin too)', () => {
    for (const { cluster } of cases) {
      const statements = formatted.get(cluster)!
      const seen = new Map<string, string>()
      for (const s of statements) {
        if (s.startsWith('CREATE TABLE')) { const c = readCreate(s); seen.set(c.name, c.engine); continue }
        const view = /^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+\.\w+) ON CLUSTER \w+ TO (\w+\.\w+)$/m.exec(firstLine(s))
        if (view !== null) {
          const sources = [...s.matchAll(/\bFROM (\w+\.\w+)/g)].map((m) => m[1]!)
          expect(sources.length).toBeGreaterThan(0)
          for (const t of [view[2]!, ...sources]) {
            expect(t, `${view[1]!} uses ${t}`).toMatch(/_local$/)
            expect(seen.get(t), `${t} not created before ${view[1]!}`).toMatch(/^Replicated/)
          }
          continue
        }
        const alter = /^ALTER TABLE (\w+\.\w+) ON CLUSTER \w+$/.exec(firstLine(s))
        if (alter === null) continue
        const engine = seen.get(alter[1]!)
        expect(engine, `ALTER of ${alter[1]!} before it exists`).toBeDefined()
        if (engine === 'Distributed') expect(s, 'only column changes reach a Distributed table').toMatch(/\(\w+ COLUMN /)
        if (/\(ADD COLUMN/.test(s) && alter[1]!.endsWith('_local')) {
          const twin = alter[1]!.replace(/_local$/, '')
          expect(statements.some((o) => o === s.replace(alter[1]!, twin)), `${twin} misses ${s}`).toBe(true)
        }
      }
      // every view the migrations create, each once
      const migrationViews = MIGRATIONS.flatMap((m) => m.statements('db')).filter((q) => q.startsWith('CREATE MATERIALIZED VIEW')).length
      expect(ddls.get(cluster)!.views.length).toBe(migrationViews)
    }
  })

  it('every table setting it writes exists in ClickHouse, and the deduplication window is the Replicated one', async () => {
    const known = new Set((await rows<{ name: string }>('SELECT name FROM system.merge_tree_settings')).map((r) => r.name))
    const used = new Set<string>()
    for (const s of formatted.get('vitalflow')!) {
      const modify = /MODIFY SETTING (.+)\)$/m.exec(s)?.[1]
      for (const kv of modify?.split(', ') ?? []) used.add(kv.split(' = ')[0]!)
      if (s.startsWith('CREATE TABLE')) for (const k of readCreate(s).settings) used.add(k)
    }
    expect([...used].filter((k) => !known.has(k))).toEqual([])
    expect([...used].filter((k) => k.startsWith('non_replicated'))).toEqual([])
    expect(used).toContain('replicated_deduplication_window')
    expect(used).toContain('replicated_deduplication_window_seconds')
  })

  it('covers every table the migrations create in ClickHouse: engine family, columns and types, sorting and partition keys', async () => {
    const ddl = ddls.get('vitalflow')!
    const tables = await rows<{ name: string; engine: string; sorting_key: string; partition_key: string }>(
      'SELECT name, engine, sorting_key, partition_key FROM system.tables WHERE database = {db:String} ORDER BY name', { db: DB })
    const columns = await rows<{ table: string; name: string; type: string }>('SELECT table, name, type FROM system.columns WHERE database = {db:String}', { db: DB })
    const created = new Map(formatted.get('vitalflow')!.filter((s) => s.startsWith('CREATE TABLE')).map(readCreate).map((c) => [c.name, c]))
    // columns a local table gets from later ALTERs
    for (const s of formatted.get('vitalflow')!) {
      const add = /^ALTER TABLE (\w+\.\w+) ON CLUSTER \w+\n\s+\(ADD COLUMN (?:IF NOT EXISTS )?`(\w+)` (.+?)(?: (?:DEFAULT|COMMENT|CODEC|AFTER|FIRST)\b.*)?\)$/.exec(s)
      if (add !== null) created.get(add[1]!)!.columns.set(add[2]!, add[3]!)
    }
    const views = tables.filter((t) => t.engine === 'MaterializedView').map((t) => t.name)
    expect(ddl.views.map((v) => v.name).sort()).toEqual(views.sort())
    const stored = tables.filter((t) => t.engine !== 'MaterializedView')
    expect(ddl.tables.map((t) => t.name).sort()).toEqual(stored.map((t) => t.name).sort())
    for (const t of stored) {
      const placed = ddl.tables.find((p) => p.name === t.name)!
      const own = new Map(columns.filter((c) => c.table === t.name).map((c) => [c.name, c.type]))
      expect(placed.placement, t.name).toBe(t.engine === 'Memory' ? 'per-node' : own.has('tenant_id') ? 'sharded' : 'everywhere')
      const local = created.get(`${DB}.${placed.local}`)!
      expect(local.engine, t.name).toBe(t.engine === 'Memory' ? 'Memory' : `Replicated${t.engine}`)
      expect(Object.fromEntries(local.columns), t.name).toEqual(Object.fromEntries(own))
      expect(keyList(local.orderBy), t.name).toBe(t.sorting_key)
      expect(local.partitionBy ?? '', t.name).toBe(t.partition_key)
    }
    // the platform's own bookkeeping, without a tenant: replicated to every node instead of sharded. A new
    // tenant-less table lands here too and must be looked at: does it really belong on every node?
    expect(ddl.tables.filter((t) => t.placement === 'everywhere').map((t) => t.name).sort()).toEqual(['retention_applied', 'schema_migrations'])
    expect(ddl.tables.filter((t) => t.placement === 'per-node').map((t) => t.name)).toEqual(['erasure_set'])
    expect(ddl.versions).toEqual(MIGRATIONS.map((m) => m.version))
    expect(ddl.skipped.map((s) => s.version)).toEqual([10, 16])
  })

  it('--after: only later migrations, on tables the earlier ones created', async () => {
    const last = MIGRATIONS.at(-1)!.version
    const ddl = clusterDdl({ database: DB, cluster: 'vitalflow', after: last - 1 })
    expect(ddl.versions).toEqual([last])
    expect(ddl.statements.at(-1)).toMatch(new RegExp(`VALUES \\(${last}, `))
    for (const s of ddl.statements) await format(s)
    // on a cluster that has every migration: the database and the record table, nothing else (not the retention TTLs)
    expect(clusterDdl({ database: DB, cluster: 'vitalflow', after: last }).statements).toHaveLength(2)
  })
})

describe('a migration the generator does not handle stops it', () => {
  const withMigration = (...statements: string[]): Migration[] =>
    [...MIGRATIONS, { version: 999, name: 'a new one', statements: (db) => statements.map((s) => s.replaceAll('$db', db)) }]
  const generate = (m: Migration[]): ClusterDdl => clusterDdl({ database: DB, cluster: 'vitalflow', migrations: m })

  it('a new MergeTree table with a tenant is sharded and gets its twin without a change to the generator', async () => {
    const ddl = generate(withMigration('CREATE TABLE IF NOT EXISTS $db.new_things (tenant_id String, x UInt8) ENGINE = SummingMergeTree(x) ORDER BY (tenant_id)'))
    expect(ddl.tables.at(-1)).toMatchObject({ name: 'new_things', local: 'new_things_local', placement: 'sharded', engine: 'ReplicatedSummingMergeTree' })
    const created = ddl.statements.filter((s) => s.includes('new_things'))
    expect(created).toHaveLength(2)
    for (const s of created) await format(s)
  })

  it.each([
    ['an engine it does not translate', 'CREATE TABLE IF NOT EXISTS $db.t (tenant_id String) ENGINE = Log', /engine Log/],
    ['a table already replicated', "CREATE TABLE IF NOT EXISTS $db.t (tenant_id String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY tenant_id", /engine ReplicatedMergeTree/],
    ['a tenant table whose ORDER BY does not start with tenant_id', 'CREATE TABLE IF NOT EXISTS $db.t (tenant_id String, ts DateTime) ENGINE = MergeTree ORDER BY (ts, tenant_id)', /ORDER BY does not start/],
    ['a plain view', 'CREATE VIEW IF NOT EXISTS $db.v AS SELECT 1', /not translated/],
    ['a view writing a tenant-less table', 'CREATE MATERIALIZED VIEW IF NOT EXISTS $db.v TO $db.retention_applied AS SELECT * FROM $db.vital_samples', /not sharded/],
    ['an ALTER it has no rule for', 'ALTER TABLE $db.vital_samples DROP PARTITION 202401', /not translated/],
    ['an ALTER of a table nobody created', 'ALTER TABLE $db.nowhere ADD COLUMN x UInt8', /no earlier migration created/],
    ['rows seeded by VALUES', "INSERT INTO $db.tenants VALUES ('t', 'T', now64(3))", /not translated/],
    ['a table outside the database', 'CREATE TABLE IF NOT EXISTS other.t (tenant_id String) ENGINE = MergeTree ORDER BY tenant_id', /outside database/],
  ])('%s', (_, statement, why) => {
    expect(() => generate(withMigration(statement))).toThrow(ClusterDdlError)
    expect(() => generate(withMigration(statement))).toThrow(why)
  })

  it('refuses names that are not identifiers', () => {
    for (const bad of [{ database: 'vf-db', cluster: 'c' }, { database: DB, cluster: "c' ON CLUSTER x" }, { database: DB, cluster: '' }]) {
      expect(() => clusterDdl(bad)).toThrow(ClusterDdlError)
    }
  })
})

describe('a tenant\'s dashboard access on a cluster', () => {
  it('every statement is valid ClickHouse ON CLUSTER; grants and both row policies cover each dashboard table and its local table', async () => {
    await fc.assert(fc.asyncProperty(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), async (tenant) => {
      const { user, statements } = clusterTenantAccessDdl(DB, 'vitalflow', tenant, 'a-long-dashboard-password', 'vitalflow')
      expect(statements).toHaveLength(3 + 3 * 2 * DASHBOARD_TABLES.length)
      const out: string[] = []
      for (const s of statements) out.push(await format(s))
      for (const f of out) expect(f).toMatch(/ ON CLUSTER vitalflow\b/)
      for (const t of DASHBOARD_TABLES.flatMap((d) => [d, `${d}_local`])) {
        const on = out.filter((f) => f.includes(` ON ${DB}.${t} `) || f.endsWith(` ON ${DB}.${t}`))
        expect(on.filter((f) => f.startsWith('GRANT ON CLUSTER vitalflow SELECT')), t).toHaveLength(1)
        expect(on.filter((f) => f.includes(`USING tenant_id = '${tenant}' TO`) && f.includes(`vf_tenant_${tenant}`)), t).toHaveLength(1)
        expect(on.filter((f) => f.includes('vf_service_all') && f.endsWith('USING 1 TO vitalflow')), t).toHaveLength(1)
      }
      expect(statements.filter((s) => s.includes(`TO \`${user}\``)).length).toBe(1 + 4 * DASHBOARD_TABLES.length)
      expect(statements.join('\n')).not.toContain('a-long-dashboard-password')
    }), { numRuns: 15 })
  })

  it('refuses a tenant id that could break out of the literal, and a cluster name that is not an identifier', () => {
    for (const bad of ["x' OR 1=1 --", 'a\\b', '']) expect(() => clusterTenantAccessDdl(DB, 'vitalflow', bad, 'p')).toThrow()
    expect(() => clusterTenantAccessDdl(DB, 'a b', 'care-1', 'p')).toThrow(ClusterDdlError)
  })
})

describe('npm run admin -- storage ...', () => {
  const admin = async (...args: string[]): Promise<{ stdout: string; stderr: string }> =>
    await run(process.execPath, ['--import', 'tsx', 'src/admin-cli.ts', 'storage', ...args], { env: { ...process.env, VF_DATA_DIR: dir.path } })
  const statementsOf = (script: string): string[] =>
    script.split('\n').filter((l) => !l.startsWith('--')).join('\n').trim().split(/;\n\n/).map((s) => s.replace(/;\n?$/, ''))

  it('cluster-ddl prints the generator\'s statements as one script, with the skipped backfill as a comment', async () => {
    const { stdout } = await admin('cluster-ddl', '--cluster', 'vitalflow')
    const ddl = clusterDdl({ database: DB, cluster: 'vitalflow' })
    expect(stdout).toBe(clusterDdlScript(ddl))
    expect(statementsOf(stdout)).toEqual(ddl.statements)
    expect(stdout).toMatch(/^-- not applied, migration 10 \(/m)
  }, 30_000)

  it('cluster-tenant prints the tenant\'s statements and the generated password once, on stderr', async () => {
    const { stdout, stderr } = await admin('cluster-tenant', 'care-cl', '--cluster', 'vitalflow')
    const password = /shown once.*: (\S+)$/m.exec(stderr)?.[1]
    expect(password?.length).toBeGreaterThanOrEqual(24)
    expect(statementsOf(stdout)).toEqual(clusterTenantAccessDdl(DB, 'vitalflow', 'care-cl', password!, 'default').statements)
    expect(stdout).not.toContain(password)
  }, 30_000)

  it('without --cluster it names what is missing and exits 2', async () => {
    const failed = await admin('cluster-ddl').then(() => null, (err: unknown) => err as { code: number; stderr: string })
    expect(failed?.code).toBe(2)
    expect(failed?.stderr).toMatch(/missing --cluster/)
  }, 30_000)
})
