/**
 * Several ingest nodes behind HAProxy, joined over Redis (VF_REDIS_URL):
 *
 * - aedes' own clustering: mqemitter-redis carries messages between brokers
 *   (an alarm relayed on node B reaches a responder on node A; a CONNECT with a
 *   client id connected elsewhere closes the other session, aedes'
 *   $SYS/+/new/clients), aedes-persistence-redis keeps subscriptions and QoS 1
 *   sessions (a responder that was offline gets the alarms it missed);
 * - replay marks shared (replay-marks.ts);
 * - the registry and consent change feed with its barrier (change-feed.ts).
 *
 * Telemetry is consumed in authorizePublish and never routed (the broker ends a
 * consumed publish there, src/broker/broker.ts), so none of it reaches Redis.
 */
import { Redis, type RedisOptions } from 'ioredis'
import MQEmitterRedis from 'mqemitter-redis'
import redisPersistence from 'aedes-persistence-redis'
import { startChangeFeed, type ChangeFeed, type FeedEntry } from './change-feed.ts'
import { createReplayMarks, type ReplayMarks } from './replay-marks.ts'

export interface ClusterOptions {
  url: string
  nodeId: string
  barrierTimeoutMs: number
  liveTtlMs: number
  apply: (e: FeedEntry) => Promise<void>
  onLink?: (up: boolean) => void
  onFresh?: (fresh: boolean) => void
}

export interface Cluster {
  nodeId: string
  /** For Aedes.createBroker: the message bus and the session store. */
  aedes: { mq: unknown; persistence: unknown }
  marks: ReplayMarks
  feed: ChangeFeed
  /** Whether the command connection to Redis is up now. */
  up: () => boolean
  close: () => Promise<void>
}

interface Emitter {
  state: { on: (event: 'error', listener: (err: Error) => void) => void }
  emit: (packet: { topic: string }, cb?: (err?: Error) => void) => void
  close: (cb: () => void) => void
}

export async function startCluster (o: ClusterOptions): Promise<Cluster> {
  // commands fail at once while the link is down (no offline queue); a hung server times out
  const base: RedisOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000, retryStrategy: (n) => Math.min(50 * n, 1000) }
  const redis = new Redis(o.url, base)
  const reader = new Redis(o.url, { ...base, commandTimeout: undefined })
  let linked = false
  redis.on('error', () => {}) // reported through 'close' / 'ready' below, without the message
  reader.on('error', () => {})
  await Promise.all([redis.connect(), reader.connect()])
  linked = true
  const marks = createReplayMarks(redis, () => linked)
  redis.on('ready', () => {
    linked = true
    o.onLink?.(true)
    void marks.flush()
  })
  redis.on('close', () => {
    if (linked) o.onLink?.(false)
    linked = false
  })
  const feed = await startChangeFeed({
    redis, reader, nodeId: o.nodeId, barrierTimeoutMs: o.barrierTimeoutMs, liveTtlMs: o.liveTtlMs, apply: o.apply,
    ...(o.onFresh === undefined ? {} : { onFresh: o.onFresh }),
  })
  const bus = MQEmitterRedis({ connectionString: o.url }) as unknown as Emitter
  // a lost link is reported by the command connection (onLink); ioredis reconnects by itself
  bus.state.on('error', () => {})
  const sessions = new Redis(o.url, { maxRetriesPerRequest: 1 })
  sessions.on('error', () => {})
  return {
    nodeId: o.nodeId,
    aedes: { mq: bus, persistence: redisPersistence({ conn: sessions }) },
    marks,
    feed,
    up: () => linked,
    close: async () => {
      await feed.close()
      await marks.flush()
      redis.disconnect()
      sessions.disconnect()
    },
  }
}
