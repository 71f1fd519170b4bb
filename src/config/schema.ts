/**
 * The one configuration schema. Every key is read from the environment with
 * the VF_ prefix (VF_MQTT_PORT, ...), once, at start-up; a bad value stops
 * start-up with a message that names the variable and what it accepts.
 */
import { z } from 'zod'
import { addressList } from '../addresses.ts'
import { VitalflowError } from '../errors.ts'

const port = z.coerce.number().int().min(0).max(65535)
/** From the environment as text; an override may give the boolean itself. */
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')])

export const configSchema = z.object({
  DATA_DIR: z.string().min(1).default('./data')
    .describe('data directory: chDB files, development TLS material, master key, admin token'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level; nothing at info or above carries a health value or patient id'),
  MQTT_HOST: z.string().min(1).default('127.0.0.1').describe('address of the plain MQTT (TCP) listener; loopback by default'),
  MQTT_PORT: port.default(1883).describe('plain MQTT port; 0 picks a free port'),
  MQTT_TCP: bool.default(true).describe('enable the plain MQTT listener (development and local gateways only)'),
  MQTTS_HOST: z.string().min(1).default('0.0.0.0').describe('address of the MQTT over TLS listener'),
  MQTTS_PORT: port.default(8883).describe('MQTT over TLS port; 0 picks a free port'),
  MQTTS_MTLS_PORT: port.default(8884).describe('MQTT over mutual TLS (device client certificates signed by the tenant CA); 0 picks a free port'),
  MQTTS_MTLS: bool.default(true).describe('enable the mutual-TLS listener'),
  TLS_CERT: z.string().optional().describe('server certificate (PEM); a development CA and certificate are created in DATA_DIR/tls when unset'),
  TLS_KEY: z.string().optional().describe('server private key (PEM), with VF_TLS_CERT'),
  TLS_CA: z.string().optional().describe('CA bundle devices use to verify the server (reported to the simulator)'),
  HTTP_HOST: z.string().min(1).default('127.0.0.1').describe('address of the HTTP API'),
  HTTP_PORT: port.default(8080).describe('admin and query HTTP API port; 0 picks a free port'),
  ADMIN_TOKEN: z.string().min(24).optional().describe('bearer token of the admin API; generated into DATA_DIR/admin-token when unset'),
  MASTER_KEY: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be 32 bytes, base64url').optional()
    .describe('master key wrapping device payload keys; a development key is generated into DATA_DIR/master.key when unset'),
  CLICKHOUSE_URL: z.url().optional().describe('ClickHouse server URL; unset = embedded chDB in DATA_DIR/chdb'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional()
    .describe('several nodes: Redis joining them (aedes clustering, shared replay marks, the consent and registry change feed); unset = one node'),
  NODE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional().describe('this node\'s name among several (VF_REDIS_URL); generated into DATA_DIR/node-id when unset'),
  CLUSTER_BARRIER_MS: z.coerce.number().int().min(100).max(120_000).default(10_000)
    .describe('how long a consent or registry change waits for every live node to apply it before the request fails (503 ING_ERR_CLUSTER); above CLUSTER_LIVE_TTL_MS, so a dead node drops out first'),
  CLUSTER_LIVE_TTL_MS: z.coerce.number().int().min(200).max(60_000).default(3000)
    .describe('a node is live while it refreshed its Redis key within this time; one that could not for half of it takes no consent-based data'),
  CLICKHOUSE_USER: z.string().default('default').describe('server mode only'),
  CLICKHOUSE_PASSWORD: z.string().default('').describe('server mode only'),
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('vitalflow').describe('database holding every vitalflow table'),
  CLICKHOUSE_CLUSTER: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a ClickHouse identifier').optional()
    .describe('ClickHouse cluster (remote_servers) the schema was created on with storage cluster-ddl; erasure, rectification, retention and legal holds then rewrite the local tables ON CLUSTER and wait for every replica; server mode only; unset = one server'),
  ACK_AFTER: z.enum(['log', 'store']).default('log')
    .describe('when a device gets its PUBACK: `log` = once its rows are in this node\'s write-ahead log; `store` = once they are also inserted into ClickHouse (server mode: on VF_INSERT_QUORUM replicas; embedded: the part synced to disk), so the loss of this node\'s disk loses no acknowledged row. Alarms are relayed on decode either way'),
  INSERT_QUORUM: z.coerce.number().int().min(1).max(16).default(2)
    .describe('server mode with VF_ACK_AFTER=store: replicas of a shard that must have a telemetry insert before it returns (insert_quorum, with insert_quorum_parallel=1 and distributed_foreground_insert=1); ignored by tables that are not Replicated'),
  BATCH_MAX_ROWS: z.coerce.number().int().min(1).max(1_000_000).default(50_000).describe('flush a table batch at this many rows'),
  BATCH_MAX_AGE_MS: z.coerce.number().int().min(1).max(60_000).default(200).describe('flush a table batch at this age (spot measurements, device status and refusals: at least 1 s, alarm events 250 ms, sequence numbers 1 s, bracelet samples 500 ms unless VF_ACK_AFTER=store; src/storage/batch-policy.ts); bounds how long logged rows wait before they are queryable (a PUBACK waits for the write-ahead log, not for this)'),
  STORAGE_BACKLOG_ROWS: z.coerce.number().int().min(0).max(100_000_000).default(200_000)
    .describe('bulk rows (bracelet samples, spot measurements) taken but not yet stored beyond which new bulk messages wait, unacknowledged, and their senders are not read (alarms and status never wait); bounds device → queryable; 0 = never'),
  READ_SLICE_MS: z.coerce.number().int().min(0).max(1000).default(20)
    .describe('while the node is busy, how long one turn of its event loop reads bulk connections (gateway phones, cVitals kits) before the rest waits for the next turn, so that alarms and status are read at once; 0 = no slices'),
  MAX_PACKET_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(300 * 1024)
    .describe('largest MQTT packet accepted; larger ones drop the connection before their body is buffered'),
  MAX_CONNECT_BYTES: z.coerce.number().int().min(128).max(65_536).default(4096).describe('largest MQTT CONNECT packet accepted'),
  MQTT5_RECEIVE_MAXIMUM: z.coerce.number().int().min(1).max(65_535).default(100)
    .describe('Receive Maximum advertised to MQTT 5 devices: QoS 1/2 publishes one connection may have unanswered; one more is disconnected with reason 0x93'),
  MQTT5_TOPIC_ALIAS_MAXIMUM: z.coerce.number().int().min(0).max(65_535).default(16)
    .describe('Topic Alias Maximum advertised to MQTT 5 devices (0 = no aliases); an alias of 0, above it or never set is disconnected with reason 0x94'),
  MQTT5_SESSION_EXPIRY_MAX_S: z.coerce.number().int().min(1).max(2_592_000).default(86_400)
    .describe('longest Session Expiry Interval an MQTT 5 device (a gateway phone, a responder) may have, seconds; a longer request (also never) is cut to this and said so in CONNACK'),
  MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(50_000).describe('open connections per listener'),
  MAX_CONNECTIONS_PER_TENANT: z.coerce.number().int().min(1).max(1_000_000).default(20_000).describe('authenticated connections per tenant'),
  PUBLISH_RATE: z.coerce.number().min(0.1).max(100_000).default(50).describe('sustained publishes per second per device, over all its connections and reconnects; above it the connection is dropped'),
  PUBLISH_BURST: z.coerce.number().int().min(1).max(1_000_000).default(500).describe('publishes a device may burst above the sustained rate'),
  AUTH_FREE_FAILURES: z.coerce.number().int().min(1).max(1000).default(5).describe('failed logins per source address before exponential back-off'),
  AUTH_MAX_BACKOFF_S: z.coerce.number().int().min(1).max(86_400).default(300).describe('longest back-off after failed logins, seconds'),
  WAL_SEGMENT_BYTES: z.coerce.number().int().min(4096).max(1024 ** 3).default(64 * 1024 ** 2).describe('write-ahead log segment size'),
  WAL_BUDGET_BYTES: z.coerce.number().int().min(8192).max(1024 ** 4).default(1024 ** 3)
    .describe('disk the write-ahead log may use while storage is behind; above it devices get no PUBACK (they keep the data and retry); at least twice VF_WAL_SEGMENT_BYTES'),
  DISK_RESERVE_BYTES: z.coerce.number().int().min(0).max(1024 ** 4).default(64 * 1024 ** 2)
    .describe('free disk under VF_DATA_DIR below which devices get no PUBACK (the room left ships the log and serves ClickHouse); 0 = only a failing write stops acknowledgements'),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000).describe('how long a stop may spend shipping the log before it leaves the rest for the next start'),
  SESSION_IDLE_MS: z.coerce.number().int().min(1000).max(86_400_000).default(15 * 60_000).describe('a clinician session ends after this much inactivity'),
  SESSION_MAX_MS: z.coerce.number().int().min(1000).max(7 * 86_400_000).default(8 * 3600_000).describe('and after this long in any case'),
  LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).max(100).default(5).describe('failed log-ins in a row before an account is locked'),
  LOGIN_LOCK_MS: z.coerce.number().int().min(1000).max(86_400_000).default(15 * 60_000).describe('how long a locked account stays locked'),
  RESEARCH_MIN_GROUP: z.coerce.number().int().min(2).max(1000).default(5).describe('smallest number of patients a research aggregate may describe'),
  DEVICE_AUTH_COST: z.coerce.number().int().min(10).max(20).default(14).describe('scrypt cost (log2 N) of user passwords; device secrets (256 random bits) are stored as a keyed hash, and one still stored as scrypt by an earlier version is replaced on its next CONNECT'),
  TLS_HANDSHAKE_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000)
    .describe('a TLS handshake must complete within this or the socket is closed; in line with the 10 s MQTT connect timeout that follows it'),
  METRICS_TOKEN: z.string().min(24).optional().describe('bearer token a Prometheus scraper sends to /metrics; the admin token when unset'),
  METRICS_TENANT_LABELS: bool.default(false).describe('label connection counts in /metrics by tenant id (ids identify customers); otherwise one total'),
  HASH_THREADS: z.coerce.number().int().min(1).max(64).optional()
    .describe('worker threads computing secret and password hashes (scrypt runs there, never on the libuv pool the write-ahead log uses); unset = half the cores, 1 to 4'),
  HASH_QUEUE: z.coerce.number().int().min(0).max(100_000).default(256)
    .describe('secret and password checks that may wait for a hash thread (the last waits about this many hash times); one more is refused at once (MQTT CONNACK 3, MQTT 5 CONNACK 0x89, HTTP 503, ING_ERR_AUTH_BUSY)'),
  PROXY_PROTOCOL_FROM: z.union([z.string(), z.array(z.string())]).default('').transform((v, ctx) => {
    // comma-separated in the environment, a list when given programmatically
    const entries = (typeof v === 'string' ? v.split(',') : v).map((e) => e.trim()).filter((e) => e !== '')
    try { addressList(entries) } catch (err) { ctx.addIssue({ code: 'custom', message: (err as Error).message }) }
    return entries
  }).describe('load balancers (comma-separated addresses or CIDR ranges) whose MQTT connections begin with a PROXY protocol v1/v2 header; its device address is then used for back-off, security events and rejection records. Required from these, ignored from anyone else; empty = off'),
})

export type Config = z.infer<typeof configSchema>

export class ConfigError extends VitalflowError<'ING_ERR_CONFIG'> {
  constructor (message: string) {
    super('ING_ERR_CONFIG', message)
  }
}

export const ENV_PREFIX = 'VF_'

/** Every key's default (the schema with nothing set): what a stage falls back to when it is given no configuration. */
export const CONFIG_DEFAULTS: Readonly<Config> = Object.freeze(configSchema.parse({}))

/**
 * Reads the configuration from environment-style variables (VF_ prefix) plus
 * explicit overrides (tests, embedding). An override takes the place of its
 * variable and goes through the same schema and the same cross-checks; a bad
 * one is named as an override.
 */
export function loadConfig (env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  const raw: Record<string, unknown> = {}
  const issues: string[] = []
  for (const key of Object.keys(configSchema.shape)) {
    const v = env[ENV_PREFIX + key]
    if (v !== undefined && v !== '') raw[key] = v
  }
  for (const [key, v] of Object.entries(overrides)) {
    if (!(key in configSchema.shape)) issues.push(`override ${key}: not a configuration key`)
    else if (v !== undefined) raw[key] = v
  }
  const parsed = configSchema.safeParse(raw)
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const key = i.path.join('.')
      issues.push(`${key in overrides ? 'override ' : ENV_PREFIX}${key}: ${i.message}`)
    }
  }
  if (issues.length > 0 || !parsed.success) throw new ConfigError(`invalid configuration:\n  ${issues.join('\n  ')}`)
  const config = parsed.data
  const conflicts = crossCheck(config)
  if (conflicts.length > 0) throw new ConfigError(`invalid configuration:\n  ${conflicts.join('\n  ')}`)
  return config
}

/** Rules between keys, which no single key's schema can state. */
function crossCheck (c: Config): string[] {
  const out: string[] = []
  if (c.WAL_BUDGET_BYTES < 2 * c.WAL_SEGMENT_BYTES) {
    // the segment being written is never released: a budget it alone can exceed stops every PUBACK for good
    out.push(`${ENV_PREFIX}WAL_BUDGET_BYTES: ${c.WAL_BUDGET_BYTES} is less than twice ${ENV_PREFIX}WAL_SEGMENT_BYTES (${c.WAL_SEGMENT_BYTES}); it must be at least ${2 * c.WAL_SEGMENT_BYTES}`)
  }
  if (c.CLICKHOUSE_CLUSTER !== undefined && c.CLICKHOUSE_URL === undefined) {
    out.push(`${ENV_PREFIX}CLICKHOUSE_CLUSTER: a cluster needs ${ENV_PREFIX}CLICKHOUSE_URL (embedded chDB is one server)`)
  }
  return out
}

/** One row per key for the README's configuration table. */
export function describeConfig (): Array<{ key: string; default: string; description: string }> {
  return Object.entries(configSchema.shape).map(([key, schema]) => {
    const parsed = (schema as z.ZodType).safeParse(undefined)
    const value = parsed.success ? parsed.data : undefined
    return {
      key: ENV_PREFIX + key,
      // a list is written as it is set: comma-separated
      default: value === undefined ? '' : typeof value === 'string' ? value : Array.isArray(value) ? value.join(',') : JSON.stringify(value),
      description: (schema as z.ZodType).description ?? '',
    }
  })
}
