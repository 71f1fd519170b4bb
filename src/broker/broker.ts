/**
 * The aedes broker with vitalflow's policy: devices authenticate with their id
 * and secret; the client id must equal the device id; telemetry is consumed in
 * authorizePublish (the only hook that runs before aedes writes the PUBACK) and
 * is never routed to subscribers. MQTT 3.1.1 devices are answered as they
 * always were (test/mqtt311-wire.test.ts); MQTT 5 devices get the reason code
 * and string of DEVICE_ANSWERS (src/reasons.ts) on CONNACK and PUBACK.
 */
import type { X509Certificate } from 'node:crypto'
import { TLSSocket } from 'node:tls'
import { Aedes, type AuthenticateError, type AuthErrorCode, type Client } from 'aedes'
import { CONFIG_DEFAULTS } from '../config/index.ts'
import type { DeviceRecord } from '../registry/index.ts'
import { BrokerReason, CONSENT_FILTERED, DEVICE_ANSWERS, PUBLISH_ANSWER, durabilityAnswer, type DeviceAnswerKey, type Reason, type Refused } from '../reasons.ts'
import { AuthBackoff, ConnectionCounter, IdentityBuckets, type TokenBucket } from './limits.ts'
import { boundedPersistence } from './inbound-qos2.ts'
import { ackPacket, isConnectedV5, refuseConnect, userPropertiesWithin, type V5Session } from './mqtt5.ts'
import { VitalflowError } from '../errors.ts'

/** An authenticated connection. `bucket` is its identity's, shared with every other connection of the same device. */
export interface Sender { record: DeviceRecord; clientId: string; remoteAddress: string; bucket: TokenBucket; connected: () => boolean }

export interface BrokerLimits {
  /** Sustained publishes per second per device (all its connections together, across reconnects), and the burst it may save up. */
  publishRate: number
  publishBurst: number
  connectionsPerTenant: number
  /** Failed authentications per source address before back-off starts, and its cap. */
  authFreeFailures: number
  authMaxBackoffSeconds: number
  /** MQTT 5: Receive Maximum, Topic Alias Maximum and the longest Session Expiry Interval (s), advertised in CONNACK. */
  receiveMaximum: number
  topicAliasMaximum: number
  sessionExpiryMaxSeconds: number
  /** The largest packet accepted (its body, VF_MAX_PACKET_BYTES): MQTT 5's Maximum Packet Size adds the fixed header. */
  maxPacketBytes: number
  /** Sessions (MQTT 5 with a Session Expiry Interval) kept after their connection closed. */
  pendingSessions: number
}

/** 3.1.1 QoS 2 messages one client id may leave waiting for their PUBREL (aedes 1.x maxInflightInbound as this node set it). */
export const QOS2_AWAITING_PUBREL = 100

/** The configuration's defaults (src/config/schema.ts), for a broker created without limits. */
export const DEFAULT_LIMITS: BrokerLimits = {
  publishRate: CONFIG_DEFAULTS.PUBLISH_RATE, publishBurst: CONFIG_DEFAULTS.PUBLISH_BURST, connectionsPerTenant: CONFIG_DEFAULTS.MAX_CONNECTIONS_PER_TENANT,
  authFreeFailures: CONFIG_DEFAULTS.AUTH_FREE_FAILURES, authMaxBackoffSeconds: CONFIG_DEFAULTS.AUTH_MAX_BACKOFF_S,
  receiveMaximum: CONFIG_DEFAULTS.MQTT5_RECEIVE_MAXIMUM, topicAliasMaximum: CONFIG_DEFAULTS.MQTT5_TOPIC_ALIAS_MAXIMUM,
  sessionExpiryMaxSeconds: CONFIG_DEFAULTS.MQTT5_SESSION_EXPIRY_MAX_S, maxPacketBytes: CONFIG_DEFAULTS.MAX_PACKET_BYTES,
  pendingSessions: CONFIG_DEFAULTS.MAX_CONNECTIONS,
}

/** The whole size of a packet whose body is `remaining` bytes: type byte, remaining-length bytes, body (MQTT 5 Maximum Packet Size). */
export function wireSize (remaining: number): number {
  return 1 + (remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4) + remaining
}

export type IngestOutcome =
  | { kind: 'stored'; rows: number; filtered: number; durable: Promise<void> }
  | { kind: 'rejected'; reason: Reason; detail: string; disconnect: boolean }

/** The broker's own refusals: authentication, rate, subscribe. */
export type BrokerRejection = Refused<BrokerReason>

export interface BrokerDeps {
  /** Rejects with an error whose code is ING_ERR_AUTH_BUSY when secret checks are saturated (CONNACK 3). */
  authenticate: (device: string, secret: string) => Promise<DeviceRecord | null>
  /** The device a verified client certificate speaks for (mutual TLS), or null. */
  authenticateCertificate?: (peer: X509Certificate) => DeviceRecord | null
  /**
   * Runs before any login is admitted, password or certificate (several nodes: the device's replay marks are
   * read from Redis). Rejecting with code ING_ERR_CLUSTER refuses it with CONNACK 3; any other error, CONNACK 5.
   */
  beforeAdmit?: (record: DeviceRecord) => Promise<void>
  /** `expiryS`: the publish's MQTT 5 Message Expiry Interval, if it had one. */
  ingest: (sender: Sender, topic: string, payload: Uint8Array, expiryS?: number) => IngestOutcome
  reject: (r: BrokerRejection) => void
  /** The payload an alert (`v1/{tenant}/alerts`) goes out with at the moment of delivery (a notice past its expiry is marked stale). */
  alertAtDelivery?: (payload: Buffer) => Buffer
  limits?: Partial<BrokerLimits>
  /** Several nodes: aedes' message bus and session store shared over Redis (src/cluster); unset = in memory. */
  cluster?: { mq: unknown; persistence: unknown }
}

/** A refusal sent to a device (its code is the pipeline's reason); never an HTTP answer. */
export class RefusedError extends VitalflowError<Reason> {}

const EMPTY = Buffer.alloc(0)
const BAD_CREDENTIALS = 4
const NOT_AUTHORIZED = 5
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3

function authError (code: number, message: string): AuthenticateError {
  // aedes declares AuthErrorCode a `const enum`, whose members an isolated module
  // (verbatimModuleSyntax) cannot name; the codes are MQTT 3.1.1 CONNACK return codes
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- see above
  const returnCode = code as AuthErrorCode
  return Object.assign(new Error(message), { returnCode })
}

/** The verified client certificate of a mutual-TLS connection, if any. */
function peerCertificate (client: Client): X509Certificate | undefined {
  const socket = (client.conn as { socket?: unknown } | undefined)?.socket
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined
  return socket.getPeerX509Certificate()
}

export function remoteAddressOf (client: Client): string {
  const conn = client.conn as { remoteAddress?: string } | undefined
  return conn?.remoteAddress ?? ''
}

export interface VitalflowBroker {
  aedes: Aedes
  connections: ConnectionCounter
  /** Live entries the bounded limit maps dropped at their caps. */
  evictions: () => { auth_sources: number; identity_buckets: number }
  /** Closes the device's connection, whichever listener it came in on (client id = device id); false if it had none. */
  disconnect: (device: string) => boolean
  close: () => Promise<void>
}

/** Where a consumed publish is routed on: a topic nobody may subscribe to (authorizeSubscribe allows only cmd and alerts). */
const CONSUMED = '$vitalflow/consumed'

/** A publish the node has taken (stored or refused): nothing of it is retained, and aedes does not route it (see createBroker). */
function markConsumed (packet: { payload: unknown; retain: boolean; topic: string }): void {
  packet.payload = EMPTY
  packet.retain = false
  packet.topic = CONSUMED
}

/** Families whose connections are read at once while the node is busy: alarm units (alarms, status) and alarm centres. */
const PRIORITY_READS: ReadonlySet<DeviceRecord['family']> = new Set(['calarm', 'responder'])

export async function createBroker (deps: BrokerDeps): Promise<VitalflowBroker> {
  const senders = new WeakMap<Client, Sender>()
  const v5 = new WeakMap<Client, V5Session>()
  const limits = { ...DEFAULT_LIMITS, ...deps.limits }
  const backoff = new AuthBackoff(limits.authFreeFailures, limits.authMaxBackoffSeconds)
  const connections = new ConnectionCounter(limits.connectionsPerTenant)
  const buckets = new IdentityBuckets(limits.publishRate, limits.publishBurst)
  const qos2 = boundedPersistence(QOS2_AWAITING_PUBREL, deps.cluster?.persistence)
  const record = (client: Client, reason: BrokerReason, detail: string, sender?: Sender, topic?: string): void => {
    deps.reject({
      reason, detail, tenant: sender?.record.tenant ?? '', device: sender?.record.device ?? '', clientId: client.id?.slice(0, 64) ?? '',
      remoteAddress: remoteAddressOf(client), ...(topic === undefined ? {} : { topic: topic.slice(0, 200) }),
    })
  }

  const aedes = await Aedes.createBroker({
    connectTimeout: 10_000,
    // a device that stops reading for 30 s is cut off rather than holding broker memory
    drainTimeout: 30_000,
    // topics are v1/{tenant}/{device}/{stream}; nothing legitimate is deeper than 4 levels
    maxTopicLevels: 8,
    maxClientsIdLength: 64,
    // several nodes: aedes' message bus (and below, its session store) shared over Redis
    ...(deps.cluster === undefined ? {} : { mq: deps.cluster.mq }),
    // the bound on QoS 2 awaiting PUBREL that aedes 1.x called maxInflightInbound (see inbound-qos2.ts),
    // around the in-memory store or the cluster's
    persistence: qos2.persistence,
    // MQTT 5, advertised in CONNACK; the packet guard (listeners) enforces the size before aedes sees a byte
    maximumPacketSize: wireSize(limits.maxPacketBytes),
    receiveMaximum: limits.receiveMaximum,
    topicAliasMaximum: limits.topicAliasMaximum,
    sessionExpiryIntervalLimit: limits.sessionExpiryMaxSeconds,
    pendingSessionsLimit: limits.pendingSessions,

    preConnect (client, packet, done) {
      if (packet.protocolVersion === 5) {
        if (!userPropertiesWithin(packet.properties?.userProperties)) {
          record(client, BrokerReason.properties, 'user properties on CONNECT beyond the limit')
          return done(new RefusedError(BrokerReason.properties, 'user properties beyond the limit'), false)
        }
        v5.set(client, { problemInformation: packet.properties?.requestProblemInformation !== false, inflight: 0 })
      }
      // a clean session starts without the QoS 2 messages an earlier one left waiting [MQTT-3.1.2-6]
      if (packet.clean) qos2.forget(packet.clientId)
      done(null, true)
    },

    authenticate (client, username, password, done) {
      const remoteAddress = remoteAddressOf(client)
      const refuse = (code: number, key: DeviceAnswerKey, detail: string, tenant = ''): void => {
        const reason = DEVICE_ANSWERS[key].reason as BrokerReason
        deps.reject({ reason, detail, tenant, clientId: client.id.slice(0, 64), remoteAddress, device: username?.slice(0, 64) ?? '' })
        // MQTT 5: our code and reason string (aedes would map the 3.1.1 code); 3.1.1: aedes' CONNACK as ever
        if (client.version === 5) return refuseConnect(client, key)
        done(authError(code, detail), null)
      }
      const failed = (err: unknown): void => {
        // one of several nodes that cannot read the device's replay marks: admitted, it would take a frame another node took
        if ((err as { code?: unknown }).code === 'ING_ERR_CLUSTER') return refuse(SERVER_UNAVAILABLE, 'clusterLogin', 'replay marks out of reach (Redis)')
        refuse(NOT_AUTHORIZED, 'authFailed', `authentication failed: ${(err as Error).name}`)
      }
      const admit = (record: DeviceRecord): void => {
        if (deps.beforeAdmit === undefined) return admitNow(record)
        deps.beforeAdmit(record).then(() => { admitNow(record) }, failed)
      }
      // a certificate login does not touch the password back-off (see AuthBackoff: it forgives nothing)
      const admitNow = (record: DeviceRecord): void => {
        if (!connections.tryAdd(record.tenant)) {
          return refuse(SERVER_UNAVAILABLE, 'connLimit', `tenant has ${limits.connectionsPerTenant} connections open`, record.tenant)
        }
        // the limit belongs to the identity: a reconnect gets the same, partly spent, bucket
        const held = buckets.acquire(record.tenant, record.device)
        // every counted connection is uncounted exactly once, when its socket closes (or now, if it
        // closed while the secret was being checked and its 'close' has been or is about to be emitted)
        let counted = true
        const uncount = (): void => { if (counted) { counted = false; connections.remove(record.tenant); held.release() } }
        client.conn.once('close', uncount)
        if ((client.conn as { destroyed?: boolean }).destroyed === true) uncount()
        senders.set(client, { record, clientId: client.id, remoteAddress, bucket: held.bucket, connected: () => counted })
        // alarm units and responders are read at once, ahead of telemetry, while the node is busy (read-scheduler.ts)
        if (PRIORITY_READS.has(record.family)) (client.conn as { priority?: boolean }).priority = true
        done(null, true)
      }
      const peer = peerCertificate(client)
      if (peer !== undefined) {
        // mutual TLS: the certificate is the credential; the client id (and username, if sent) must name the same device
        const record = deps.authenticateCertificate?.(peer) ?? null
        if (record === null) return refuse(NOT_AUTHORIZED, 'authCertificate', 'client certificate names no enrolled device of its issuing tenant')
        if (client.id !== record.device || (username !== undefined && username !== record.device)) {
          return refuse(IDENTIFIER_REJECTED, 'clientId', 'client id must equal the certificate\'s device', record.tenant)
        }
        return admit(record)
      }
      const may = backoff.begin(remoteAddress)
      if (!may.ok && may.reason === 'backoff') return refuse(NOT_AUTHORIZED, 'authBackoff', `too many failed logins from this address; retry in ${Math.ceil(may.waitMs / 1000)} s`)
      if (!may.ok) return refuse(SERVER_UNAVAILABLE, 'authSourceBusy', 'as many logins from this address are being checked as it may still fail; retry shortly')
      // from here every path settles the begun check exactly once: fail, succeed or abandon
      if (typeof username !== 'string' || password === undefined) {
        backoff.fail(remoteAddress, username ?? '')
        return refuse(BAD_CREDENTIALS, 'authPassword', 'username and password required')
      }
      // also refuses an empty client id, which aedes would otherwise accept with clean=0 [MQTT-3.1.3-8]
      if (client.id !== username) { backoff.abandon(remoteAddress); return refuse(IDENTIFIER_REJECTED, 'clientId', 'client id must equal the device id') }
      deps.authenticate(username, password.toString('utf8')).then((record) => {
        if (record === null) {
          backoff.fail(remoteAddress, username)
          return refuse(BAD_CREDENTIALS, 'authPassword', 'unknown device or wrong secret')
        }
        // forgives this device's own failures from this address, not those against other devices
        backoff.succeed(remoteAddress, username)
        admit(record)
      }, (err: unknown) => {
        backoff.abandon(remoteAddress)
        // too many checks already waiting for a hash thread: refused at once, and not a failure of this source
        if ((err as { code?: unknown }).code === 'ING_ERR_AUTH_BUSY') return refuse(SERVER_UNAVAILABLE, 'authHashBusy', 'secret checks are saturated; retry later')
        failed(err)
      })
    },

    authorizePublish (client, packet, callback) {
      const sender = client === null ? undefined : senders.get(client)
      if (sender === undefined || client === null) return callback(new RefusedError(BrokerReason.auth, 'publish from an unauthenticated client'))
      const session = client.version === 5 ? v5.get(client) : undefined
      if (session !== undefined) return authorizeV5(client, sender, session, packet, callback)
      if (!sender.bucket.take()) {
        deps.reject({
          reason: BrokerReason.rate, detail: `more than ${limits.publishRate}/s sustained (burst ${limits.publishBurst})`, tenant: sender.record.tenant,
          device: sender.record.device, clientId: sender.clientId, remoteAddress: sender.remoteAddress, topic: packet.topic.slice(0, 200),
        })
        return callback(new RefusedError(BrokerReason.rate, 'publish rate limit exceeded'))
      }
      const payload = packet.payload as Buffer
      const outcome = deps.ingest(sender, packet.topic, payload)
      // consumed here: nothing is retained or routed onward
      markConsumed(packet)
      if (outcome.kind === 'rejected') {
        // a refused message is acknowledged (MQTT 3.1.1 has no negative PUBACK) so a
        // device does not resend a poison message forever; a client that publishes
        // outside its own topics is disconnected
        return callback(outcome.disconnect ? new RefusedError(outcome.reason, outcome.detail) : null)
      }
      outcome.durable.then(() => callback(null), (err: unknown) => {
        // no PUBACK: aedes drops the connection and the device resends on reconnect
        callback(err instanceof Error ? err : new Error(String(err)))
      })
    },

    // every delivery passes here, also one from a session's queue long after the relay (aedes
    // writes the packet it passed in, so the payload is replaced in place)
    authorizeForward (_client, packet) {
      if (deps.alertAtDelivery !== undefined && packet.topic.endsWith('/alerts') && Buffer.isBuffer(packet.payload)) packet.payload = deps.alertAtDelivery(packet.payload)
      return packet
    },

    authorizeSubscribe (client, sub, callback) {
      const sender = senders.get(client)
      // devices may only listen to their own command topic; telemetry topics are never routable
      const own = sender === undefined ? null : `v1/${sender.record.tenant}/${sender.record.device}/cmd`
      if (own !== null && sub.topic === own) return callback(null, sub)
      // a responder identity listens to its tenant's alarms
      if (sender?.record.family === 'responder' && sub.topic === `v1/${sender.record.tenant}/alerts`) return callback(null, sub)
      deps.reject({
        reason: BrokerReason.subscribe, detail: 'subscription outside the client\'s own topics', tenant: sender?.record.tenant ?? '',
        device: sender?.record.device ?? '', clientId: client.id, remoteAddress: remoteAddressOf(client), topic: sub.topic.slice(0, 200),
      })
      callback(null, null)
    },
  })

  /**
   * An MQTT 5 publish. Every QoS 1/2 one is answered with its code: 0x00 through aedes (stored),
   * any other written here, after which the packet goes on as QoS 0 to a topic nobody hears, so
   * aedes acknowledges nothing more and routes nothing. Where 3.1.1 would close the connection
   * (topic violations, rate), the refusal's PUBACK is followed by a DISCONNECT with the same code.
   */
  function authorizeV5 (client: Client, sender: Sender, session: V5Session, packet: Parameters<typeof aedes.authorizePublish>[1], callback: (err?: Error | null) => void): void {
    const acked = packet.cmd === 'publish' && packet.qos > 0 && packet.messageId !== undefined
    if (acked && ++session.inflight > limits.receiveMaximum) {
      record(client, BrokerReason.inflight, `more than the Receive Maximum of ${limits.receiveMaximum} publishes unanswered`, sender, packet.topic)
      client.disconnect({ reasonCode: DEVICE_ANSWERS.inflight.code })
      return consumed()
    }
    function consumed (): void {
      markConsumed(packet)
      packet.qos = 0
      callback(null)
    }
    const answer = (key: DeviceAnswerKey | null, disconnect = false): void => {
      if (acked) session.inflight--
      if (key === null) { markConsumed(packet); return callback(null) }
      if (acked && !client.closed) client.conn.write(ackPacket(packet.qos === 2 ? 2 : 1, packet.messageId!, key, session.problemInformation))
      if (disconnect) client.disconnect({ reasonCode: DEVICE_ANSWERS[key].code })
      consumed()
    }
    if (!userPropertiesWithin(packet.properties?.userProperties)) {
      record(client, BrokerReason.properties, 'user properties on PUBLISH beyond the limit', sender, packet.topic)
      if (acked) session.inflight--
      client.disconnect({ reasonCode: DEVICE_ANSWERS.properties.code })
      return consumed()
    }
    if (!sender.bucket.take()) {
      record(client, BrokerReason.rate, `more than ${limits.publishRate}/s sustained (burst ${limits.publishBurst})`, sender, packet.topic)
      return answer('rate', true)
    }
    const outcome = deps.ingest(sender, packet.topic, packet.payload as Buffer, packet.properties?.messageExpiryInterval)
    if (outcome.kind === 'rejected') {
      const key = PUBLISH_ANSWER[outcome.reason] ?? (outcome.disconnect ? 'revokedSender' : 'revokedBound')
      return answer(key, outcome.disconnect)
    }
    packet.payload = EMPTY
    outcome.durable.then(() => { answer(outcome.rows === 0 && outcome.filtered > 0 ? 'consent' : null) }, (err: unknown) => {
      // not stored: the device is told so (busy, or not stored) and keeps the message to send it again
      answer(durabilityAnswer((err as { code?: unknown }).code))
    })
  }

  /*
   * A publish consumed in authorizePublish (every device publish, stored or refused) ends with its
   * PUBACK. aedes would take it on through its routing (the retained store, the offline sessions'
   * subscriptions, the message bus: a packet copy, two topic-trie matches and a promise per message)
   * only to find that nobody may hear CONSUMED: ~6 % of the main thread at saturation in a CPU profile
   * of small messages (bench/RESULTS.md, 2026-12-06). So it is not routed at all; what the node itself
   * publishes (alarm notices to responders) still is. Done a tick later: a refusal's callback can run
   * inside aedes' parse of the connection's bytes, and done reads the connection's next ones.
   */
  type Done = (err?: Error) => void
  // at run time aedes.publish(packet, client?, done?): its own handlers pass the client, the node does not
  const route = aedes.publish.bind(aedes) as (packet: { topic: string }, client?: Client | Done | null, done?: Done) => void
  ;(aedes as unknown as { publish: typeof route }).publish = (packet, client, done) => {
    if (packet.topic !== CONSUMED) { route(packet, client, done); return }
    const cb = typeof client === 'function' ? client : done
    if (cb !== undefined) process.nextTick(cb)
  }

  // aedes resolves topic aliases itself and closes with 0x94; counted and recorded like every refusal
  aedes.on('clientError', (client, err) => {
    if (client.version === 5 && /topic alias/.test(err.message)) record(client, BrokerReason.topicAlias, 'topic alias invalid', senders.get(client))
  })

  return {
    aedes,
    connections,
    evictions: () => ({ auth_sources: backoff.evicted, identity_buckets: buckets.evicted }),
    disconnect: (device) => {
      // aedes keeps its clients by id; its types do not declare the map
      const client = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[device]
      if (client === undefined) return false
      // MQTT 5: told why (DISCONNECT 0x87 not authorized); 3.1.1: closed
      client.disconnect({ reasonCode: DEVICE_ANSWERS.revokedSender.code })
      return true
    },
    close: () => new Promise<void>((resolve) => { aedes.close(() => resolve()) }),
  }
}

export { CONSENT_FILTERED, isConnectedV5 }
