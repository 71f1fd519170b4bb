import type { StorageConnection } from './connection.ts'
import { insertRows, selectRows } from './query.ts'
import { MIGRATIONS } from './schema.ts'

/** The table migrate() records applied versions in (the cluster DDL creates it too, and fills it). */
export function schemaMigrationsDdl (db: string): string {
  return `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = MergeTree ORDER BY version`
}

/** Applies pending migrations in order; records each in schema_migrations. Idempotent. */
export async function migrate (conn: StorageConnection): Promise<number[]> {
  const { client, table } = conn
  await client.command({ query: schemaMigrationsDdl(conn.database) })
  const done = new Set((await selectRows<{ version: number }>(conn, `SELECT version FROM ${table('schema_migrations')}`)).map((r) => Number(r.version)))
  const applied: number[] = []
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue
    for (const statement of m.statements(conn.database)) await client.command({ query: statement })
    await insertRows(conn, 'schema_migrations', [{ version: m.version, name: m.name }])
    applied.push(m.version)
  }
  return applied
}
