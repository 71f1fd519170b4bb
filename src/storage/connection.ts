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
  /**
   * The ClickHouse cluster (remote_servers) the schema was created on with `storage cluster-ddl`;
   * server mode only. Rights that rewrite rows then run ON CLUSTER on the local tables (cluster-sql.ts).
   */
  cluster?: string | undefined
}

export interface StorageConnection {
  client: ClickHouseClient
  mode: 'embedded' | 'server'
  database: string
  /** The ClickHouse cluster the node reads and writes through Distributed tables; undefined = one server (or embedded). */
  cluster: string | undefined
  /** A fully qualified table name. */
  table: (name: string) => string
  /**
   * Where requests go (the API's reads and the access-log, registry and rights writes they make), so
   * they do not wait behind the batcher's inserts. Embedded chDB runs one statement at a time per
   * connection, but connections on the same data path run side by side and see each other's
   * committed inserts (measured: bench/RESULTS.md, issue 18 part 3): in embedded mode this is a
   * second chDB connection on the same path. A server runs a client's requests concurrently: there
   * it is this connection itself. closeConnection() closes both.
   */
  requests: StorageConnection
  /**
   * Where the sample inserts go (vital_samples: the big, slow ones), so that the other tables'
   * inserts (sequence numbers, what is queryable, alarms, status) do not wait behind one. Embedded:
   * a third chDB connection on the same path; a server runs a client's inserts concurrently, so
   * there it is `client` itself. closeConnection() closes it.
   */
  bulk: ClickHouseClient
}

/** Closes a connection and, if it has them of its own, its requests and bulk insert connections. */
export async function closeConnection (conn: StorageConnection): Promise<void> {
  if (conn.requests !== conn) await conn.requests.client.close()
  if (conn.bulk !== conn.client) await conn.bulk.close()
  await conn.client.close()
}

export async function connect (target: StorageTarget): Promise<StorageConnection> {
  const db = target.database
  if (target.cluster !== undefined && target.url === undefined) throw new Error('a ClickHouse cluster needs a ClickHouse server URL (embedded chDB is one server)')
  /** A connection that takes its requests itself. */
  const own = (client: ClickHouseClient, mode: StorageConnection['mode']): StorageConnection => {
    const c = { client, bulk: client, mode, database: db, cluster: target.cluster, table: (name: string) => `${db}.${name}` } as StorageConnection
    c.requests = c
    return c
  }
  let conn: StorageConnection
  if (target.url !== undefined) {
    conn = own(createClient({ url: target.url, username: target.username ?? 'default', password: target.password ?? '' }), 'server')
  } else {
    const path = resolve(join(target.dataDir, 'chdb'))
    mkdirSync(path, { recursive: true })
    // loaded only in embedded mode: server deployments never map the engine
    const { createChdbConnection } = await import('chdb/connection')
    // chdb types the connection against its own copy of @clickhouse/client-common; the runtime contract is the same
    const chdb = (): ClientConnection => createChdbConnection({ path }) as unknown as ClientConnection
    // three connections on one path: one engine and its data, each running its own statements
    conn = { ...own(createClient({ connection: chdb() }), 'embedded'), requests: own(createClient({ connection: chdb() }), 'embedded'), bulk: createClient({ connection: chdb() }) }
  }
  await conn.client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` })
  return conn
}

type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection']
