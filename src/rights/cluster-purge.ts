/**
 * An erasure's purge on a ClickHouse cluster: the single-server purge (erasure.ts) on every replica
 * of every shard. Each patient table's local table is rewritten without its deleted rows ON CLUSTER
 * (APPLY DELETED MASK, waited for on every replica); then the purge waits until no replica has an
 * outdated part from before that rewrite, nor a mutation record older than it (a Replicated table
 * keeps them in Keeper, finished_mutations_to_keep = 1 removes the older ones).
 *
 * What "before the rewrite" means differs from one server: a Replicated table's mutation is
 * numbered in its shard's Keeper queue (0000000012), and a part it rewrote gets, as data version, the
 * block number the mutation took in that part's partition (system.mutations' block_numbers). So each
 * replica's parts are compared with its last mutation's block number for their partition; a
 * partition the mutation has no number for was created after it and holds nothing erased.
 */
import { sqlString } from '../sql.ts'
import { localTable, rewriteSettings, rewriteTarget, runCommand, selectRows, type StorageConnection } from '../storage/index.ts'

const SYNC = { mutations_sync: '2' } as const

interface Mark { host: string; table: string; n: number; blocks: Map<string, number> }

export interface ClusterPurgeOptions { timeoutMs: number; pollMs: number }

/** The single-server purge on every replica; false if ClickHouse took longer than timeoutMs to drop what the rewrite replaced. */
export async function purgeCluster (conn: StorageConnection, tables: readonly string[], o: ClusterPurgeOptions): Promise<boolean> {
  if (conn.cluster === undefined) throw new Error('purgeCluster needs a cluster connection')
  const everywhere = (t: string): string => `clusterAllReplicas(${sqlString(conn.cluster!)}, system.${t})`
  const locals = tables.map((t) => localTable(conn, t).slice(conn.database.length + 1))
  for (const table of tables) await runCommand(conn, `ALTER TABLE ${rewriteTarget(conn, table)} APPLY DELETED MASK`, {}, rewriteSettings(conn, SYNC))
  const params = { db: conn.database, tables: locals }
  const rows = await selectRows<{ host: string; table: string; n: string; partitions: string[]; numbers: string[] }>(conn,
    `SELECT hostName() AS host, table, toString(toUInt64OrZero(extract(mutation_id, '(\\\\d+)'))) AS n,
       block_numbers.partition_id AS partitions, arrayMap(x -> toString(x), block_numbers.number) AS numbers
     FROM ${everywhere('mutations')} WHERE database = {db:String} AND table IN {tables:Array(String)}`, params)
  // per replica and table, its last mutation: the rewrite (or a later one, which only makes the wait stricter)
  const last = new Map<string, Mark>()
  for (const r of rows) {
    const key = `${r.host}\0${r.table}`
    const n = Number(r.n)
    if ((last.get(key)?.n ?? -1) >= n) continue
    last.set(key, { host: r.host, table: r.table, n, blocks: new Map(r.partitions.map((p, i) => [p, Number(r.numbers[i] ?? 0)])) })
  }
  const deadline = Date.now() + o.timeoutMs
  for (;;) {
    const parts = await selectRows<{ host: string; table: string; partition: string; v: string }>(conn,
      `SELECT hostName() AS host, table, partition_id AS partition, toString(data_version) AS v FROM ${everywhere('parts')}
       WHERE database = {db:String} AND table IN {tables:Array(String)} AND active = 0`, params)
    const mutations = await selectRows<{ host: string; table: string; n: string }>(conn,
      `SELECT hostName() AS host, table, toString(toUInt64OrZero(extract(mutation_id, '(\\\\d+)'))) AS n FROM ${everywhere('mutations')}
       WHERE database = {db:String} AND table IN {tables:Array(String)}`, params)
    const mark = (host: string, table: string): Mark | undefined => last.get(`${host}\0${table}`)
    // a mutation of a plain MergeTree table (one server seen as a cluster) has one block number for every partition: ''
    const olderPart = (p: { host: string; table: string; partition: string; v: string }): boolean => {
      const m = mark(p.host, p.table)
      const block = m?.blocks.get(p.partition) ?? m?.blocks.get('')
      return block !== undefined && Number(p.v) < block
    }
    const left = parts.filter(olderPart).length + mutations.filter((m) => Number(m.n) < (mark(m.host, m.table)?.n ?? 0)).length
    if (left === 0) return true
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, o.pollMs))
  }
}
