/**
 * aedes' persistence (its in-memory one, or the cluster's over Redis) with the
 * bounds aedes 1.2 had on inbound QoS 2 and aedes 2.0.0-beta.1 does not:
 *
 * - at most `limit` QoS 2 messages per client id may wait for their PUBREL
 *   (aedes 1.x `maxInflightInbound`, GHSA-5jvp-3p2v-5qgf): one more makes its
 *   store fail, and aedes drops the connection, as 1.2 did. The place is taken
 *   synchronously and by message id, so a whole read chunk cannot slip past
 *   the check and a DUP resend takes no second place;
 * - a PUBREL whose delete loses a race with a duplicate PUBREL resolves
 *   instead of rejecting out of aedes' `.finally()` (an unhandled rejection
 *   that ends the process);
 * - a clean session forgets the client's waiting QoS 2 messages
 *   ([MQTT-3.1.2-6], GHSA-p8r9-qf8w-p73r): `forget` at CONNECT.
 *
 * The payloads kept are empty: the pipeline consumes every payload in
 * authorizePublish, before aedes stores the packet.
 */
import { createRequire } from 'node:module'

// a CommonJS package whose types declare an ES default export: the function is module.exports itself
const memory = createRequire(import.meta.url)('aedes-persistence') as () => unknown

interface Incoming {
  incomingStorePacket: (client: { id: string }, packet: { messageId?: number }) => Promise<void>
  incomingDelPacket: (client: { id: string }, packet: { messageId?: number }) => Promise<void>
}

export interface BoundedPersistence {
  /** What aedes takes as `persistence`. */
  persistence: unknown
  /** Drops every QoS 2 message of `clientId` still waiting for its PUBREL (a clean session starts). */
  forget: (clientId: string) => void
  /** Message ids waiting, per client id (for tests and metrics). */
  waiting: (clientId: string) => number
}

/** Wraps `base` (a persistence with aedes' async interface), or a new in-memory one. The bound is this node's. */
export function boundedPersistence (limit: number, base?: unknown): BoundedPersistence {
  const p = (base ?? memory()) as Incoming
  const store = p.incomingStorePacket.bind(p)
  const del = p.incomingDelPacket.bind(p)
  const held = new Map<string, Set<number>>()

  p.incomingStorePacket = async (client, packet) => {
    const id = packet.messageId ?? 0
    let ids = held.get(client.id)
    if (ids === undefined) { ids = new Set(); held.set(client.id, ids) }
    if (!ids.has(id) && ids.size >= limit) throw new Error(`more than ${limit} inbound QoS 2 messages awaiting PUBREL`)
    ids.add(id)
    try {
      await store(client, packet)
    } catch (err) {
      ids.delete(id)
      throw err
    }
  }
  p.incomingDelPacket = async (client, packet) => {
    try {
      await del(client, packet)
    } catch {
      // already deleted by a duplicate PUBREL: the PUBCOMP is owed either way
    }
    const ids = held.get(client.id)
    ids?.delete(packet.messageId ?? 0)
    if (ids?.size === 0) held.delete(client.id)
  }

  return {
    persistence: p,
    forget: (clientId) => {
      const ids = held.get(clientId)
      if (ids === undefined) return
      held.delete(clientId)
      for (const messageId of ids) void del({ id: clientId }, { messageId }).catch(() => {})
    },
    waiting: (clientId) => held.get(clientId)?.size ?? 0,
  }
}
