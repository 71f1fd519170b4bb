/**
 * One ingest node: storage (embedded chDB or a ClickHouse server), registry
 * and consent index, the ingest path inside an aedes broker, its listeners and
 * the admin API. The only module that knows every stage.
 */
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import pino, { type Logger } from 'pino'
import { AlarmHub, alarmNoticeJson, Sessions, createAdminApi, createFleetView, createPrometheus, createQueries, nameThreadPool, type Prometheus } from '../api/index.ts'
import { addressList } from '../addresses.ts'
import { joinCluster, type Joined } from '../cluster/index.ts'
import { AuthBackoff, createBroker, createReadScheduler, loadTls, startListeners, ticketKeysAt, TICKET_KEY_LIFETIME_MS } from '../broker/index.ts'
import type { Config } from '../config/index.ts'
import { ConsentIndex, POLICY, type Policy } from '../consent/index.ts'
import { restaleNotice } from '../decode/index.ts'
import { Rights } from '../rights/index.ts'
import { CertificateAuthorities, Registry, Users, createHasher, loadPresence, type DeviceRecord, type Hasher, type PresenceStore } from '../registry/index.ts'
import { createStorage, type Storage } from '../storage/index.ts'
import { Reason } from '../reasons.ts'
import { Admission } from './admission.ts'
import { createIngest } from './ingest.ts'
import { loadOrCreateSecret } from './local-secrets.ts'
import { createMetrics, type IngestMetrics } from './metrics.ts'

/** An error's name and codes, never its message (which may quote stored data). */
function describeError (err: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const { code, type } = e as { code?: unknown; type?: unknown }
    out[`level${depth}`] = { name: e.name, ...(code === undefined ? {} : { code }), ...(type === undefined ? {} : { type }) }
  }
  return out
}

export interface IngestNode {
  config: Config
  mqtt: AddressInfo | null
  mqtts: AddressInfo
  mqttsMutual: AddressInfo | null
  http: AddressInfo
  caPem: string | undefined
  adminToken: string
  registry: Registry
  rights: Rights
  storage: Storage
  metrics: IngestMetrics
  /** The pool that computes every secret and password hash. */
  hasher: Hasher
  /** Overload control: bulk telemetry waiting for storage. */
  admission: Admission
  /** Last seen, battery, firmware and certificate expiry per device (the fleet view). */
  presence: PresenceStore
  /** Re-reads the server certificate and key (VF_TLS_CERT/KEY or the development pair) without a restart. */
  reloadTls: () => void
  close: () => Promise<void>
}

/** Fault injection for tests: never set in production (main.ts passes none). */
export interface NodeFaults {
  /** Awaited before each write-ahead log group commit of a lane (e.g. to stall the bulk lane). */
  beforeWalWrite?: (lane: 'bulk' | 'priority') => Promise<void>
  /** Replaces the syncfs that makes embedded parts durable before a log checkpoint (e.g. to make it fail). */
  syncParts?: () => Promise<void>
  /** Awaited before each insert into a table (e.g. to stall the bracelet samples' inserts). */
  beforeInsert?: (table: string) => Promise<void>
}

export async function startNode (config: Config, logger: Logger = pino({ level: config.LOG_LEVEL }), policy: Policy = POLICY, faults?: NodeFaults): Promise<IngestNode> {
  const dataDir = config.DATA_DIR
  const masterKey = Buffer.from(config.MASTER_KEY ?? loadOrCreateSecret(join(dataDir, 'master.key'), 32), 'base64url')
  const adminToken = config.ADMIN_TOKEN ?? loadOrCreateSecret(join(dataDir, 'admin-token'), 32)
  const metrics = createMetrics()
  let prometheus: Prometheus | null = null
  let admission: Admission | null = null
  let ready = false
  // per-thread CPU (/metrics, scripts/thread-cpu.ts) tells libuv's pool, where chDB's statements run, from V8's workers
  await nameThreadPool()

  const storage = await createStorage({
    url: config.CLICKHOUSE_URL,
    username: config.CLICKHOUSE_USER,
    password: config.CLICKHOUSE_PASSWORD,
    database: config.CLICKHOUSE_DATABASE,
    cluster: config.CLICKHOUSE_CLUSTER,
    dataDir,
    batch: { maxRows: config.BATCH_MAX_ROWS, maxAgeMs: config.BATCH_MAX_AGE_MS },
    ackAfter: config.ACK_AFTER,
    insertQuorum: config.INSERT_QUORUM,
    wal: { segmentBytes: config.WAL_SEGMENT_BYTES, budgetBytes: config.WAL_BUDGET_BYTES, reserveBytes: config.DISK_RESERVE_BYTES },
    onWalState: (state, lane) => {
      if (state.writable) logger.info({ lane }, 'write-ahead log takes data again: PUBACKs resume')
      else logger.error({ lane, code: state.code }, 'write-ahead log takes no data (devices get no PUBACK and keep their messages); it resumes by itself when the disk has room')
    },
    onWalSync: (s, _bytes, _appends, lane) => { prometheus?.observeWalSync(s, lane) },
    ...(faults?.beforeWalWrite === undefined ? {} : { beforeWalWrite: faults.beforeWalWrite }),
    ...(faults?.syncParts === undefined ? {} : { syncParts: faults.syncParts }),
    ...(faults?.beforeInsert === undefined ? {} : { beforeInsert: faults.beforeInsert }),
    onCheckpointError: (err) => { logger.error({ error: describeError(err) }, 'write-ahead log checkpoint not written; its segments are kept and the next checkpoint retries') },
    onReplayWindowsDamaged: (why) => { logger.error({ why }, 'replay-window file not readable: windows seeded from the store (a resend older than a device\'s stored head is refused) and the file written anew') },
    onFlush: (r) => {
      admission?.pump()
      metrics.flushes++
      prometheus?.observeFlush(r.table, r.rows, r.ms / 1000, r.error === undefined)
      if (r.error !== undefined) {
        metrics.flushErrors++
        // ClickHouse parse errors quote the offending input, i.e. health values: log only the error's code and type
        logger.error({ table: r.table, rows: r.rows, attempt: r.attempt, error: describeError(r.error) }, 'insert failed; acknowledged rows stay in the write-ahead log and are retried')
      }
    },
  })
  // what requests do (the API's reads, and the registry, rights and access-log writes they make) runs on a
  // connection of its own, so it does not wait behind the batcher's inserts (StorageConnection.requests)
  const requestSide: Storage = { ...storage, conn: storage.conn.requests }
  const presence = await loadPresence(storage, {
    flushMs: 5000,
    onError: (err) => { logger.error({ error: describeError(err) }, 'device presence not written; kept in memory and retried') },
  })
  const consent = new ConsentIndex(policy)
  const hasher = createHasher({ threads: config.HASH_THREADS ?? Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2))), maxQueue: config.HASH_QUEUE })
  const cas = new CertificateAuthorities(join(dataDir, 'tenant-ca'), masterKey)
  let trustTenants: (() => void) | null = null
  let disconnectDevice: ((device: string) => boolean) | null = null
  let loaded: Registry | null = null
  // several nodes (VF_REDIS_URL): src/cluster; unset = one node, nothing below changes
  const joined: Joined | null = config.REDIS_URL === undefined ? null : await joinCluster({
    url: config.REDIS_URL, nodeId: config.NODE_ID ?? loadOrCreateSecret(join(dataDir, 'node-id'), 9), barrierTimeoutMs: config.CLUSTER_BARRIER_MS,
    liveTtlMs: config.CLUSTER_LIVE_TTL_MS, embedded: config.CLICKHOUSE_URL === undefined, conn: storage.conn, consent, registry: () => loaded,
    onRegistryChange: (revoked) => {
      trustTenants?.()
      for (const d of revoked) if (disconnectDevice?.(d.device) === true) logger.info({ family: d.family }, 'device revoked on another node disconnected')
    },
    onLink: (up) => { if (up) logger.info('Redis reachable again'); else logger.error('Redis out of reach: replay marks are kept here until it is back') },
    onFresh: (fresh) => {
      if (fresh) logger.info('change feed current: consent-based data is taken again')
      else logger.error('change feed not current: consent-based data waits unacknowledged; alarms and status go on, an alarm\'s location is not kept')
    },
  })
  const registry = await Registry.load(requestSide.conn, {
    masterKey, consent, hasher, cas, onTenant: () => { trustTenants?.() },
    onCertificate: (tenant, device, notAfterMs) => { presence.certificate(tenant, device, notAfterMs) },
    ...(joined === null ? {} : { replicate: (table: string, rows: ReadonlyArray<Record<string, unknown>>) => joined.cluster.feed.publish(table, rows) }),
    onRevoke: (d) => {
      trustTenants?.() // the new revocation list on the mutual-TLS listener
      if (disconnectDevice?.(d.device) === true) logger.info({ family: d.family }, 'revoked device disconnected')
    },
  })
  loaded = registry
  const rights = await Rights.load({ storage: requestSide, registry, consent, policy })
  const users = await Users.load(requestSide.conn, { maxFailures: config.LOGIN_MAX_FAILURES, lockMs: config.LOGIN_LOCK_MS }, config.DEVICE_AUTH_COST, hasher)
  const admitting = new Admission({
    maxBacklogRows: config.STORAGE_BACKLOG_ROWS,
    backlog: () => storage.backlog(),
    // tenant ids name customers, not patients: they may be logged
    onShedding: (e) => {
      if (e.shedding) logger.warn({ backlogRows: e.backlogRows, bound: config.STORAGE_BACKLOG_ROWS }, 'storage is behind: bulk telemetry waits unacknowledged and its senders are slowed (alarms and status go on)')
      else logger.warn({ durationMs: e.durationMs, waited: e.waited, maxWaiting: e.maxWaiting, tenants: e.tenants }, 'storage caught up: bulk senders are read again')
    },
  })
  admission = admitting
  const stored = await storage.storedSequences()
  if (storage.stats().newLog && stored.size > 0) {
    // the store outlived a log: a lost disk, or a new node joining a shared ClickHouse
    logger.warn({ devicesInStore: stored.size, ackAfter: config.ACK_AFTER }, config.ACK_AFTER === 'store'
      ? 'write-ahead log is new but the store already holds messages: if this node had a log before, nothing it acknowledged was only there'
      : 'write-ahead log is new but the store already holds messages: if this node had a log before (a lost disk), what it acknowledged and had not shipped is gone')
  }
  const alarms = new AlarmHub()
  let relayToMqtt: ((a: Parameters<AlarmHub['publish']>[0]) => void) | null = null
  const ingest = createIngest({
    consent: joined?.gate ?? consent, storage, admission, metrics, stored,
    ...(joined === null ? {} : { marks: joined.cluster.marks }),
    onAlarm: (a) => { alarms.publish(a); relayToMqtt?.(a) },
    devices: { device: (id) => registry.device(id), patientAt: (d, t) => registry.patientAt(d, t) },
    onAccepted: (tenant, device, status, nowMs) => {
      if (status === null) presence.seen(tenant, device, nowMs)
      else presence.status(tenant, device, status, nowMs)
    },
  })

  const broker = await createBroker({
    authenticate: (device, secret) => registry.authenticate(device, secret),
    // a device may come from another node: what was accepted there is a replay here (before its CONNACK, whichever way it logs in)
    ...(joined === null ? {} : { beforeAdmit: async (record: DeviceRecord) => { for (const [d, seen] of await joined.marksFor(record)) ingest.learn(d, seen) } }),
    authenticateCertificate: (peer) => {
      const d = registry.deviceForCertificate(peer)
      // the certificate a device logs in with is the one whose expiry the fleet view shows
      if (d !== null) presence.certificate(d.tenant, d.device, Date.parse(peer.validTo))
      return d
    },
    ingest: joined === null ? ingest.ingest : (sender, topic, payload, expiryS) => joined.refuseStale(topic) ?? ingest.ingest(sender, topic, payload, expiryS),
    ...(joined === null ? {} : { cluster: joined.cluster.aedes }),
    reject: ingest.reject,
    alertAtDelivery: (payload) => restaleNotice(payload),
    limits: {
      publishRate: config.PUBLISH_RATE, publishBurst: config.PUBLISH_BURST, connectionsPerTenant: config.MAX_CONNECTIONS_PER_TENANT,
      authFreeFailures: config.AUTH_FREE_FAILURES, authMaxBackoffSeconds: config.AUTH_MAX_BACKOFF_S,
      receiveMaximum: config.MQTT5_RECEIVE_MAXIMUM, topicAliasMaximum: config.MQTT5_TOPIC_ALIAS_MAXIMUM,
      sessionExpiryMaxSeconds: config.MQTT5_SESSION_EXPIRY_MAX_S, maxPacketBytes: config.MAX_PACKET_BYTES, pendingSessions: config.MAX_CONNECTIONS,
    },
  })
  disconnectDevice = (device) => broker.disconnect(device)
  broker.aedes.on('clientError', (_client, err) => { logger.debug({ err: err.message }, 'client error') })
  // responders subscribed to v1/{tenant}/alerts get each alarm at QoS 1; aedes routes it like any message.
  // No Message Expiry on it: aedes would drop an expired alarm from a responder's session queue, and a
  // late alarm is still an alarm; its notice carries expiresAtMs and is marked stale instead
  relayToMqtt = (a) => {
    broker.aedes.publish({ cmd: 'publish', topic: `v1/${a.tenant}/alerts`, payload: Buffer.from(alarmNoticeJson(a)), qos: 1, retain: false, dup: false }, () => {})
  }

  const tlsFiles = { dataDir, cert: config.TLS_CERT, key: config.TLS_KEY, ca: config.TLS_CA }
  const tls = loadTls(tlsFiles)
  const tenantCas = (): string[] => cas.bundle(registry.listTenants().map((t) => t.tenant))
  const tenantCrls = (): string[] => cas.crls(registry.listTenants().map((t) => t.tenant))
  const reads = createReadScheduler({ sliceMs: config.READ_SLICE_MS })
  const listeners = await startListeners(broker.aedes, {
    tcp: config.MQTT_TCP ? { host: config.MQTT_HOST, port: config.MQTT_PORT } : null,
    tls: { host: config.MQTTS_HOST, port: config.MQTTS_PORT },
    mtls: config.MQTTS_MTLS ? { host: config.MQTTS_HOST, port: config.MQTTS_MTLS_PORT, trust: tenantCas(), crl: tenantCrls() } : null,
    material: tls,
    guard: { maxPacketBytes: config.MAX_PACKET_BYTES, maxConnectBytes: config.MAX_CONNECT_BYTES },
    reads,
    maxConnections: config.MAX_CONNECTIONS,
    handshakeTimeoutMs: config.TLS_HANDSHAKE_TIMEOUT_MS,
    proxyFrom: config.PROXY_PROTOCOL_FROM.length === 0 ? null : addressList(config.PROXY_PROTOCOL_FROM),
    ticketKeys: ticketKeysAt(masterKey, Date.now()),
    onViolation: (reason, remoteAddress, detail) => {
      ingest.reject({ reason, detail: detail ?? (reason === Reason.size ? 'packet larger than the limit: connection dropped before buffering' : 'not an MQTT session'), remoteAddress })
    },
  })
  trustTenants = () => {
    try {
      listeners.setTrust(tenantCas(), tenantCrls())
    } catch (err) {
      logger.error({ error: describeError(err) }, 'a tenant CA revocation list does not parse: the last good lists stay in force')
      metrics.securityEvents++
    }
  }
  // the next period's ticket keys at its start (one timer a day; unref'd, it keeps no process alive)
  const untilNextPeriod = (): number => TICKET_KEY_LIFETIME_MS - (Date.now() % TICKET_KEY_LIFETIME_MS) + 1
  const rotateTickets = (): void => {
    listeners.setTicketKeys(ticketKeysAt(masterKey, Date.now()))
    ticketTimer = setTimeout(rotateTickets, untilNextPeriod()).unref()
  }
  let ticketTimer = setTimeout(rotateTickets, untilNextPeriod()).unref()
  const caPem = tls.ca?.toString('utf8')

  const sessions = new Sessions({ idleMs: config.SESSION_IDLE_MS, absoluteMs: config.SESSION_MAX_MS })
  const loginBackoff = new AuthBackoff(config.AUTH_FREE_FAILURES, config.AUTH_MAX_BACKOFF_S)
  prometheus = createPrometheus({
    accepted: metrics.accepted, rejected: metrics.rejected, unacknowledged: metrics.unacknowledged, rowsStored: metrics.rowsStored,
    get rowsFiltered () { return metrics.rowsFiltered },
    get securityEvents () { return metrics.securityEvents },
    walBytes: () => storage.stats().walBytes,
    walBudgetBytes: config.WAL_BUDGET_BYTES,
    notAcknowledging: () => { const a = storage.acknowledging(); return a.ok ? null : a.code },
    queuedRows: () => storage.stats().queuedRows,
    stageSeconds: metrics.stageSeconds,
    admission: () => ({ waiting: admission?.waiting ?? 0, episodes: admission?.sheddingEpisodes ?? 0, waitedByTenant: admission?.waitedByTenant ?? new Map<string, number>() }),
    connections: () => broker.connections.snapshot(),
    hashing: () => hasher.stats(),
    reads: () => ({ waiting: reads.waiting, deferred: reads.deferred }),
    evictions: () => ({ ...broker.evictions(), security_event_sources: ingest.evicted(), sessions: sessions.evicted, login_sources: loginBackoff.evicted }),
  }, { tenantLabels: config.METRICS_TENANT_LABELS })
  const fleet = createFleetView(registry, presence)
  const api = createAdminApi({
    metrics: prometheus.registry,
    fleet,
    ...(config.METRICS_TOKEN === undefined ? {} : { metricsToken: config.METRICS_TOKEN }),
    serviceUser: config.CLICKHOUSE_USER,
    clinician: {
      users, sessions, queries: createQueries(requestSide.conn),
      registry, consent, alarms, rights, storage: requestSide, fleet, researchMinGroup: config.RESEARCH_MIN_GROUP,
      loginBackoff,
    },
    // ready only while the node can acknowledge: a load balancer sends devices elsewhere otherwise
    ready: () => ready && storage.acknowledging().ok,
    registry,
    storage: requestSide,
    adminToken,
    stats: () => ({ ...metrics, connectedClients: broker.aedes.connectedClients, mode: storage.conn.mode, cluster: joined === null ? null : { redis: joined.cluster.up(), feedCurrent: joined.cluster.feed.fresh(), marksWaiting: joined.cluster.marks.pending() } }),
    connectionInfo: () => ({ mqtt: listeners.tcp?.port ?? null, mqtts: listeners.tls.port, mqttsMutual: listeners.mtls?.port ?? null, caPem }),
  })
  await api.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT })
  const http = api.server.address() as AddressInfo
  ready = true

  let closing: Promise<void> | null = null
  return {
    config,
    mqtt: listeners.tcp,
    mqtts: listeners.tls,
    mqttsMutual: listeners.mtls,
    http,
    caPem,
    adminToken,
    registry,
    rights,
    storage,
    metrics,
    hasher,
    admission: admitting,
    presence,
    // SIGHUP: the server certificate and key, and the tenant CAs' revocation lists
    reloadTls: () => { listeners.setTls(loadTls(tlsFiles)); trustTenants?.() },
    close: () => {
      closing ??= (async () => {
        ready = false
        clearTimeout(ticketTimer)
        const stopped = listeners.close()
        await broker.close()
        await joined?.cluster.close()
        await stopped
        await api.close()
        await presence.close()
        admission?.close()
        await storage.close(config.SHUTDOWN_TIMEOUT_MS)
        await hasher.close()
      })()
      return closing
    },
  }
}
