/**
 * What a node does differently when it is one of several (node.ts wires it in
 * only with VF_REDIS_URL): applies other nodes' registry and consent changes,
 * learns a device's replay marks before its CONNACK, and takes no
 * consent-based data while it cannot be sure its consent index is current.
 */
import { parseTopic } from '../decode/index.ts'
import type { ConsentIndex } from '../consent/index.ts'
import { consentEventOf, type DeviceRecord, type Registry } from '../registry/index.ts'
import { insertRows, type StorageConnection } from '../storage/index.ts'
import { ClusterError, type FeedEntry } from './change-feed.ts'
import { startCluster, type Cluster } from './cluster.ts'

export interface JoinOptions {
  url: string
  nodeId: string
  barrierTimeoutMs: number
  liveTtlMs: number
  /** Embedded chDB: each node has its own store, so rows from the feed are stored here too; with a server they are already there. */
  embedded: boolean
  conn: StorageConnection
  consent: ConsentIndex
  /** The registry, once loaded (feed entries before that are read by its load). */
  registry: () => Registry | null
  /** After another node's registry change: the devices it revoked (to disconnect here). */
  onRegistryChange: (revoked: DeviceRecord[]) => void
  onLink?: (up: boolean) => void
  onFresh?: (fresh: boolean) => void
}

/** Streams whose rows are consent-based (vitals, spot measurements): refused unacknowledged while the feed is not current. */
const CONSENT_STREAMS: ReadonlySet<string> = new Set(['vitals', 'spot'])

export interface Joined {
  cluster: Cluster
  /** The consent gate the hot path reads: while the feed is not current, only own-basis categories pass (an alarm's location is cut). */
  gate: Pick<ConsentIndex, 'gate'>
  /** Null to go on; else an outcome without PUBACK (the device keeps the message and resends it). */
  refuseStale: (topic: string) => { kind: 'stored'; rows: number; filtered: number; durable: Promise<void> } | null
  /**
   * The device's and its bound devices' marks from Redis, for the replay window. Rejects (ING_ERR_CLUSTER)
   * while Redis is out of reach: the login is refused, since a frame another node took would look new here.
   */
  marksFor: (record: DeviceRecord) => Promise<Array<[string, bigint[]]>>
}

export async function joinCluster (o: JoinOptions): Promise<Joined> {
  const { consent } = o
  const apply = async (e: FeedEntry): Promise<void> => {
    if (o.embedded) await insertRows(o.conn, e.table, e.rows)
    if (e.table === 'consent_events') {
      for (const r of e.rows) consent.apply(consentEventOf(r))
      return
    }
    const registry = o.registry()
    if (registry === null) return
    const revokedBefore = new Set<string>()
    for (const t of registry.listTenants()) for (const d of registry.listDevices(t.tenant)) if (d.revokedAtMs !== null) revokedBefore.add(d.device)
    await registry.reload()
    const revoked: DeviceRecord[] = []
    for (const t of registry.listTenants()) for (const d of registry.listDevices(t.tenant)) if (d.revokedAtMs !== null && !revokedBefore.has(d.device)) revoked.push(d)
    o.onRegistryChange(revoked)
  }
  const cluster = await startCluster({
    url: o.url, nodeId: o.nodeId, barrierTimeoutMs: o.barrierTimeoutMs, liveTtlMs: o.liveTtlMs, apply,
    ...(o.onLink === undefined ? {} : { onLink: o.onLink }),
    ...(o.onFresh === undefined ? {} : { onFresh: o.onFresh }),
  })
  const feed = cluster.feed
  return {
    cluster,
    gate: { gate: (tenant, patient, nowMs) => feed.fresh() ? consent.gate(tenant, patient, nowMs) : consent.gate(tenant, null, nowMs) },
    refuseStale: (topic) => {
      if (feed.fresh()) return null
      const t = parseTopic(topic)
      if (t === null || !CONSENT_STREAMS.has(t.stream)) return null
      const durable = Promise.reject(new ClusterError('ING_ERR_CLUSTER', 'this node cannot confirm it has every consent change: consent-based data waits unacknowledged'))
      durable.catch(() => {})
      return { kind: 'stored', rows: 0, filtered: 0, durable }
    },
    marksFor: async (record) => {
      const devices = [record.device as string]
      const registry = o.registry()
      if (registry !== null) for (const d of registry.listDevices(record.tenant)) if (d.gateway === record.device) devices.push(d.device)
      const out: Array<[string, bigint[]]> = []
      for (const d of devices) {
        const seen = await cluster.marks.load(d)
        if (seen === null) throw new ClusterError('ING_ERR_CLUSTER', 'the replay marks in Redis cannot be read')
        out.push([d, seen])
      }
      return out
    },
  }
}
