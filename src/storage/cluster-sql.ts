/**
 * Statements that rewrite rows or a table's definition, on one server or on a ClickHouse cluster
 * (VF_CLICKHOUSE_CLUSTER). On one server they name the table and run there. On a cluster the node
 * reads and inserts through the Distributed tables, but ClickHouse refuses ALTER ... UPDATE/DELETE,
 * lightweight DELETE, MODIFY TTL and MODIFY SETTING on a Distributed table: those go to the table
 * that holds the rows on every node (`<table>_local`, as cluster-ddl.ts generated it from the same
 * migrations), ON CLUSTER, and wait until every replica has applied them.
 *
 * A mutation of a Replicated table is run by each replica on its own parts, at its own time: its
 * predicate must be deterministic (ClickHouse refuses a subquery there unless
 * allow_nondeterministic_mutations is set, and a subquery over a per-node table such as a Memory
 * table gives each replica its own answer). Callers therefore put no subquery into a cluster mutation.
 */
import { clusterDdl, type ClusterTable } from './cluster-ddl.ts'
import type { StorageConnection } from './connection.ts'

type Conn = Pick<StorageConnection, 'database' | 'cluster' | 'table'>

/**
 * How long an ON CLUSTER statement waits for every node (ClickHouse's default is 180 s). A
 * mutation waited for on all replicas (mutations_sync = 2) can take longer on a large table; past
 * this the statement fails (the mutation goes on in ClickHouse) and so does the request.
 */
export const CLUSTER_DDL_TIMEOUT_S = 600

const placed = new Map<string, Map<string, ClusterTable>>()

/** The cluster's tables as cluster-ddl.ts generates them from the node's migrations. */
function clusterTables (conn: Conn & { cluster: string }): Map<string, ClusterTable> {
  const key = `${conn.database}\0${conn.cluster}`
  let tables = placed.get(key)
  if (tables === undefined) {
    tables = new Map(clusterDdl({ database: conn.database, cluster: conn.cluster }).tables.map((t) => [t.name, t]))
    placed.set(key, tables)
  }
  return tables
}

/** Tables sharded by tenant on the cluster (their rows live in `<name>_local`); empty on one server. */
export function shardedTables (conn: Conn): string[] {
  if (conn.cluster === undefined) return []
  return [...clusterTables({ ...conn, cluster: conn.cluster }).values()].filter((t) => t.placement === 'sharded').map((t) => t.name)
}

/** The table that holds a table's rows on each node: itself on one server, `<name>_local` for a sharded one on a cluster. */
export function localTable (conn: Conn, name: string): string {
  if (conn.cluster === undefined) return conn.table(name)
  const t = clusterTables({ ...conn, cluster: conn.cluster }).get(name)
  return conn.table(t?.local ?? name)
}

/**
 * Where an ALTER (or a lightweight DELETE) of a table goes: the table on one server; on a cluster,
 * the table under it on every node, `<db>.<name>_local ON CLUSTER <cluster>`.
 */
export function rewriteTarget (conn: Conn, name: string): string {
  return conn.cluster === undefined ? conn.table(name) : `${localTable(conn, name)} ON CLUSTER ${conn.cluster}`
}

/** A view's name for DROP VIEW: on a cluster, ON CLUSTER (the views read and write the local tables on every node). */
export function viewTarget (conn: Conn, name: string): string {
  return conn.cluster === undefined ? conn.table(name) : `${conn.table(name)} ON CLUSTER ${conn.cluster}`
}

/**
 * Settings of a rewrite on a cluster: it returns once every replica of every shard has it (a
 * mutation, a lightweight DELETE, an ALTER of the table's definition), and an ON CLUSTER statement
 * waits for every node. One server: the caller's settings, unchanged.
 */
export function rewriteSettings (conn: Conn, single: Record<string, string> = {}): Record<string, string> {
  if (conn.cluster === undefined) return single
  return {
    ...single,
    mutations_sync: '2',
    lightweight_deletes_sync: '2',
    alter_sync: '2',
    distributed_ddl_task_timeout: String(CLUSTER_DDL_TIMEOUT_S),
  }
}
