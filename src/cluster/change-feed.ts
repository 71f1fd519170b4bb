/**
 * The registry and consent change feed between nodes, over a Redis stream,
 * with a barrier: a change is done when every live node has applied it.
 *
 *   origin: store locally → XADD vf:feed → wait until every live node's
 *           applied id (HASH vf:applied) has reached the entry's id
 *   others: XREAD from their applied id → apply (store the rows if embedded,
 *           then the consent index or a registry reload) → HSET vf:applied
 *
 * A node is live while its key vf:live:{node} exists (refreshed every quarter
 * of its time to live; Redis expires it). A node calls itself fresh only while
 * both its heartbeat and its feed reader have succeeded within half that time:
 * one that is not fresh may have been dropped from barriers, so it must take
 * no consent-based data (cluster.ts), rather than guess.
 */
import type { Redis } from 'ioredis'
import { VitalflowError } from '../errors.ts'

const STREAM = 'vf:feed'
const APPLIED = 'vf:applied'
const LIVE = 'vf:live:'
/** Entries kept in the stream: a node away longer than this many changes reloads from the store (server mode). */
const KEEP = 100_000

export interface FeedEntry { origin: string; table: string; rows: Array<Record<string, unknown>> }

export interface ChangeFeedOptions {
  redis: Redis
  /** A connection of its own: XREAD BLOCK holds it. */
  reader: Redis
  nodeId: string
  barrierTimeoutMs: number
  liveTtlMs: number
  /** Applies an entry of another node; a throw stops the reader (and so this node's consent-based intake) until it applies. */
  apply: (e: FeedEntry) => Promise<void>
  onFresh?: (fresh: boolean) => void
}

export class ClusterError extends VitalflowError<'ING_ERR_CLUSTER'> {}

/** Stream ids are "ms-seq"; compares them numerically. */
function idAtLeast (a: string, b: string): boolean {
  const [am = 0n, as = 0n] = a.split('-').map((x) => BigInt(x))
  const [bm = 0n, bs = 0n] = b.split('-').map((x) => BigInt(x))
  return am > bm || (am === bm && as >= bs)
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => { setTimeout(resolve, ms) })

export interface ChangeFeed {
  /** Publishes rows stored here and resolves once every live node has applied them; rejects (ING_ERR_CLUSTER) at the timeout. */
  publish: (table: string, rows: ReadonlyArray<Record<string, unknown>>) => Promise<void>
  fresh: () => boolean
  /** Nodes whose live key exists. */
  liveNodes: () => Promise<string[]>
  close: () => Promise<void>
}

export async function startChangeFeed (o: ChangeFeedOptions): Promise<ChangeFeed> {
  const { redis, reader, nodeId } = o
  let lastBeat = 0
  let lastRead = 0
  let closed = false
  let wasFresh = false
  let position = (await redis.hget(APPLIED, nodeId)) ?? '0'
  const fresh = (): boolean => {
    const now = Date.now()
    return !closed && now - lastBeat < o.liveTtlMs / 2 && now - lastRead < o.liveTtlMs / 2
  }
  const tell = (): void => {
    const f = fresh()
    if (f !== wasFresh) { wasFresh = f; o.onFresh?.(f) }
  }
  const beat = async (): Promise<void> => {
    try {
      await redis.set(LIVE + nodeId, '1', 'PX', o.liveTtlMs)
      lastBeat = Date.now()
    } catch { /* not live: fresh() turns false, consent-based intake stops */ }
    tell()
  }
  await beat()
  const beats = setInterval(() => { void beat() }, Math.max(50, Math.floor(o.liveTtlMs / 4)))

  const readLoop = async (): Promise<void> => {
    while (!closed) {
      try {
        const got = await reader.xread('COUNT', 500, 'BLOCK', Math.max(50, Math.floor(o.liveTtlMs / 8)), 'STREAMS', STREAM, position)
        for (const [, entries] of got ?? []) {
          for (const [id, fields] of entries) {
            const e = JSON.parse(fields[1] ?? '{}') as FeedEntry
            if (e.origin !== nodeId) await o.apply(e)
            position = id
          }
        }
        await redis.hset(APPLIED, nodeId, position)
        lastRead = Date.now()
      } catch {
        if (closed) return
        await sleep(Math.max(20, Math.floor(o.liveTtlMs / 8)))
      }
      tell()
    }
  }
  // caught up once before the node says it is ready (it must not take consent-based data on an old index)
  lastRead = 0
  const running = readLoop()
  while (!fresh() && !closed) await sleep(10)

  const liveNodes = async (): Promise<string[]> => {
    const out: string[] = []
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${LIVE}*`, 'COUNT', 1000)
      cursor = next
      for (const k of keys) out.push(k.slice(LIVE.length))
    } while (cursor !== '0')
    return out
  }

  return {
    fresh,
    liveNodes,
    publish: async (table, rows) => {
      const id = await redis.xadd(STREAM, 'MAXLEN', '~', KEEP, '*', 'e', JSON.stringify({ origin: nodeId, table, rows }))
      if (id === null) throw new ClusterError('ING_ERR_CLUSTER', 'the change feed took no entry')
      const deadline = Date.now() + o.barrierTimeoutMs
      for (;;) {
        const [live, applied] = await Promise.all([liveNodes(), redis.hgetall(APPLIED)])
        const behind = live.filter((n) => n !== nodeId && !idAtLeast(applied[n] ?? '0', id))
        if (behind.length === 0) return
        if (Date.now() >= deadline) {
          throw new ClusterError('ING_ERR_CLUSTER', `stored on this node, but ${behind.length} live node(s) did not apply it within ${o.barrierTimeoutMs} ms: not yet in force everywhere (it applies when they catch up)`)
        }
        await sleep(5)
      }
    },
    close: async () => {
      closed = true
      clearInterval(beats)
      try { await redis.del(LIVE + nodeId) } catch { /* expires by itself */ }
      reader.disconnect()
      await running
    },
  }
}
