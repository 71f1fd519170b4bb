/**
 * The fleet's MQTT connections: one per device, or one per gateway phone
 * carrying its bracelet. Each publishes at QoS 1 within a bounded in-flight
 * window (the rest waits in its queue), reconnects with exponential back-off
 * and jitter, and now and then resends a message it already had acknowledged.
 */
import mqtt, { type MqttClient } from 'mqtt'
import { backoffMs, type Backoff } from '../src/backoff.ts'
import type { SimCertificate } from './fleet-store.ts'
import type { Behaviour, DataTable, FleetOptions, RunTally } from './fleet-types.ts'

export interface Frame { topic: string; frame: Buffer; seq: number; table: DataTable; rows: number; alarm: boolean }

export interface Link {
  id: string
  client: MqttClient | null
  inflight: number
  /** Frames published and not yet acknowledged: resent after the connection is replaced. */
  unacked: Set<Frame>
  /** Bumped when the connection is replaced; answers for an older connection are ignored. */
  generation: number
  queue: Frame[]
  offline: boolean
  /** Failed connection attempts since the last successful one. */
  failures: number
}

/** A device's (or gateway phone's) credential: a client certificate for the mutual-TLS port, or its secret. */
export interface Identity { device: string; secret: string; certificate?: SimCertificate }

const RECONNECT: Backoff = { baseMs: 2000, maxMs: 30_000 }

export function newLink (id: string): Link {
  return { id, client: null, inflight: 0, unacked: new Set(), generation: 0, queue: [], offline: false, failures: 0 }
}

export interface Links {
  /** Counts a failed attempt and returns the next wait: 2 s doubling up to 30 s, with jitter. */
  backOff: (link: Link) => number
  connect: (link: Link, via: Identity) => Promise<MqttClient>
  /** Publishes queued frames while the in-flight window has room. */
  pump: (link: Link) => void
}

export function createLinks (opts: FleetOptions, b: Behaviour, tally: RunTally, rng: { next: () => number; chance: (p: number) => boolean }, settled: () => void): Links {
  const { r, expected, samples, keep, awaitingQuery, awaitingResponder } = tally

  function backOff (link: Link): number {
    link.failures++
    return backoffMs(link.failures, RECONNECT, () => rng.next())
  }

  /** The identity's own credential: its client certificate on the mutual-TLS port when it has one (and the port is given), else its secret. */
  function connect (link: Link, via: Identity): Promise<MqttClient> {
    const credential = opts.mtlsPort !== undefined && via.certificate !== undefined
      ? { port: opts.mtlsPort, cert: via.certificate.certPem, key: via.certificate.keyPem }
      : { port: opts.port, username: via.device, password: via.secret }
    return mqtt.connectAsync({
      protocol: 'mqtts', host: opts.host, ca: opts.ca, servername: 'localhost',
      clientId: link.id, ...credential, clean: true, reconnectPeriod: 1000, connectTimeout: 10_000, protocolVersion: opts.protocolVersion ?? 4,
    }).then((client) => {
      // exponential back-off with jitter, reset once connected again
      client.on('close', () => {
        if (link.offline) return
        client.options.reconnectPeriod = backOff(link)
      })
      client.on('connect', () => { if (link.failures > 0) r.reconnects++; link.failures = 0 })
      link.failures = 0
      return client
    })
  }

  function pump (link: Link): void {
    while (link.client !== null && !link.offline && link.inflight < b.inflightWindow && link.queue.length > 0) {
      const f = link.queue.shift()!
      link.inflight++
      link.unacked.add(f)
      const generation = link.generation
      const started = performance.now()
      const sentAt = Date.now()
      if (f.alarm) awaitingResponder.set(`${f.topic.split('/')[2]!}/${f.seq}`, sentAt)
      const answered = (): void => {
        if (generation !== link.generation) return
        link.unacked.delete(f)
        r.acked++
        expected[f.table] += f.rows
        keep(samples.ack, performance.now() - started)
        const device = f.topic.split('/')[2]!
        if (opts.api !== undefined && f.rows > 0) {
          let list = awaitingQuery.get(device)
          if (list === undefined) awaitingQuery.set(device, list = [])
          list.push({ seq: f.seq, at: sentAt })
        }
        // now and then a device did not see the PUBACK in time and resends: same frame, same sequence number
        if (b.duplicateRate > 0 && rng.chance(b.duplicateRate)) {
          r.duplicatesSent++
          void link.client?.publishAsync(f.topic, f.frame, { qos: 1, dup: true }).catch(() => {})
        }
      }
      link.client.publishAsync(f.topic, f.frame, { qos: 1 }).then(answered, (err: unknown) => {
        if (generation !== link.generation) return
        // MQTT 5: a PUBACK with a reason code. Refused for good (no consent, ...) is an answer like 0x00;
        // 0x80 and 0x97 (not stored now) are failures, as a missing PUBACK is
        const code = (err as { code?: unknown }).code
        if (typeof code === 'number') {
          const k = `0x${code.toString(16)}`
          tally.pubackCodes[k] = (tally.pubackCodes[k] ?? 0) + 1
          if (code !== 0x80 && code !== 0x97) { answered(); return }
        }
        link.unacked.delete(f)
        r.failed++
      }).finally(() => {
        if (generation !== link.generation) return
        link.inflight--
        pump(link)
        settled()
      })
    }
  }

  return { backOff, connect, pump }
}
