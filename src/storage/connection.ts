/**
 * One storage API, two transports: embedded chDB (default) or a ClickHouse
 * server. Both are @clickhouse/client; only the connection differs.
 */
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createClient, type ClickHouseClient } from '@clickhouse/client'

export interface StorageTarget {
  /** ClickHouse server URL; undefined = embedded chDB. */
  url?: string | undefined
  username?: string
  password?: string
  /** Directory for chDB's files (embedded mode). */
  dataDir: string
  database: string
}

export interface StorageConnection {
  client: ClickHouseClient
  mode: 'embedded' | 'server'
  database: string
  /** A fully qualified table name. */
  table: (name: string) => string
}

export async function connect (target: StorageTarget): Promise<StorageConnection> {
  let client: ClickHouseClient
  let mode: StorageConnection['mode']
  if (target.url !== undefined) {
    client = createClient({ url: target.url, username: target.username ?? 'default', password: target.password ?? '' })
    mode = 'server'
  } else {
    const path = resolve(join(target.dataDir, 'chdb'))
    mkdirSync(path, { recursive: true })
    // loaded only in embedded mode: server deployments never map the engine
    const { createChdbConnection } = await import('chdb/connection')
    // chdb types the connection against its own copy of @clickhouse/client-common; the runtime contract is the same
    const connection = createChdbConnection({ path }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection']
    client = createClient({ connection })
    mode = 'embedded'
  }
  const db = target.database
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` })
  return { client, mode, database: db, table: (name) => `${db}.${name}` }
}
