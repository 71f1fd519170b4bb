/**
 * Telemetry and registry schema, as ordered migrations. Every table starts its
 * ORDER BY with tenant_id. Telemetry tables hold pseudonymous ids only
 * (tenant, patient, device): there is no column a name, BSN, address or e-mail
 * could go into. Each telemetry row carries the purpose it was collected for,
 * its legal basis and the consent version it was collected under.
 */
export interface Migration { version: number; name: string; statements: (db: string) => string[] }

const TIME = "DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))"
const PROVENANCE = `
    purpose LowCardinality(String),
    legal_basis LowCardinality(String),
    consent_version UInt32,
    ingested_at ${TIME}`

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'telemetry tables',
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.vital_samples (
    tenant_id LowCardinality(String),
    patient_id String,
    device_id String,
    metric LowCardinality(String),
    category LowCardinality(String),
    ts ${TIME},
    value Float32 CODEC(Gorilla, ZSTD(1)),
    duration_ms UInt32 COMMENT 'interval a count covers (steps, energy, sleep epoch); 0 = instantaneous' CODEC(T64, ZSTD(1)),
    quality UInt8 COMMENT '0..4 heart-rate quality; 255 = not rated',
    seq UInt64 CODEC(Delta, ZSTD(1)),
    idx UInt16,${PROVENANCE}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant_id, patient_id, metric, ts, device_id, seq, idx)`,
      `CREATE TABLE IF NOT EXISTS ${db}.spot_measurements (
    tenant_id LowCardinality(String),
    patient_id String,
    device_id String,
    ts ${TIME},
    meter_model LowCardinality(String),
    systolic Nullable(Float32) COMMENT 'LOINC 8480-6, mm[Hg]',
    diastolic Nullable(Float32) COMMENT 'LOINC 8462-4, mm[Hg]',
    pulse Nullable(Float32) COMMENT 'LOINC 8867-4, /min',
    spo2 Nullable(Float32) COMMENT 'LOINC 59408-5, %',
    temperature Nullable(Float32) COMMENT 'LOINC 8310-5, Cel',
    glucose Nullable(Float32) COMMENT 'LOINC 15074-8, mmol/L',
    weight Nullable(Float32) COMMENT 'LOINC 29463-7, kg',
    seq UInt64,${PROVENANCE}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant_id, patient_id, ts, device_id, seq)`,
      `CREATE TABLE IF NOT EXISTS ${db}.alarm_events (
    tenant_id LowCardinality(String),
    patient_id String,
    device_id String,
    ts ${TIME},
    kind LowCardinality(String),
    battery UInt8,
    latitude Nullable(Float64) COMMENT 'stored only under a valid location consent',
    longitude Nullable(Float64),
    accuracy_m Nullable(Float32),
    location_consent_version UInt32,
    seq UInt64,${PROVENANCE}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant_id, patient_id, ts, device_id, seq)`,
      `CREATE TABLE IF NOT EXISTS ${db}.device_status (
    tenant_id LowCardinality(String),
    device_id String,
    patient_id String,
    ts ${TIME},
    model LowCardinality(String),
    firmware LowCardinality(String),
    serial_number String,
    battery UInt8,
    last_sync Nullable(DateTime64(3, 'UTC')),
    diagnostics Array(String) CODEC(ZSTD(3)),
    seq UInt64,${PROVENANCE}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant_id, device_id, ts, seq)`,
      `CREATE TABLE IF NOT EXISTS ${db}.rejected_messages (
    tenant_id LowCardinality(String) COMMENT 'empty when the sender could not be attributed',
    device_id String,
    client_id String,
    remote_address String,
    topic String,
    bytes UInt32,
    reason LowCardinality(String),
    detail String COMMENT 'our own description; never payload bytes or plaintext',
    ts ${TIME}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant_id, ts)`,
    ],
  },
  {
    version: 2,
    name: 'registry and consent log',
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.tenants (
    tenant_id String,
    display_name String COMMENT 'the care organisation, not a person',
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(created_at) ORDER BY tenant_id`,
      `CREATE TABLE IF NOT EXISTS ${db}.patients (
    tenant_id String,
    patient_id String COMMENT 'pseudonym; the link to a person stays with the controller',
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(created_at) ORDER BY (tenant_id, patient_id)`,
      `CREATE TABLE IF NOT EXISTS ${db}.devices (
    tenant_id String,
    device_id String,
    family LowCardinality(String),
    patient_id String COMMENT 'current binding; empty = unbound',
    secret_hash String COMMENT 'HMAC-SHA-256 under a pepper from the master key (scrypt if enrolled before keyed hashes, until its next CONNECT); the secret itself is never stored',
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (tenant_id, device_id)`,
      `CREATE TABLE IF NOT EXISTS ${db}.device_keys (
    tenant_id String,
    device_id String,
    key_id UInt32,
    wrapped_key String COMMENT 'AES-256-GCM under the master key; never plain',
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(created_at) ORDER BY (tenant_id, device_id, key_id)`,
      `CREATE TABLE IF NOT EXISTS ${db}.consent_events (
    tenant_id String,
    patient_id String,
    purpose LowCardinality(String),
    category LowCardinality(String),
    action Enum8('grant' = 1, 'withdraw' = 2),
    version UInt32 COMMENT 'per tenant and patient, increasing',
    recorded_by String,
    source LowCardinality(String),
    recorded_at DateTime64(3, 'UTC'),
    valid_from DateTime64(3, 'UTC') COMMENT 'when the consent was given (a paper form may be recorded later); never after recorded_at'
) ENGINE = MergeTree ORDER BY (tenant_id, patient_id, version)`,
    ],
  },
  {
    version: 3,
    name: 'device sequence numbers (replay high-water marks that survive a restart)',
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.device_sequences (
    tenant_id LowCardinality(String),
    device_id String,
    seq UInt64
) ENGINE = ReplacingMergeTree ORDER BY (tenant_id, device_id, seq)`,
      // written in the same INSERT as the rows themselves: a stored message's sequence number is never missing here
      ...['vital_samples', 'spot_measurements', 'alarm_events', 'device_status'].map((t) =>
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${t}_sequences TO ${db}.device_sequences AS SELECT DISTINCT tenant_id, device_id, seq FROM ${db}.${t}`),
      `CREATE TABLE IF NOT EXISTS ${db}.security_events (
    tenant_id LowCardinality(String) COMMENT 'empty = platform level (source not attributable to a tenant)',
    source String COMMENT 'device id, or remote address when no identity was established',
    reasons Map(LowCardinality(String), UInt32),
    refusals UInt32,
    first_ts DateTime64(3, 'UTC'),
    ts DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (tenant_id, ts)`,
      `ALTER TABLE ${db}.device_keys ADD COLUMN IF NOT EXISTS not_after Nullable(DateTime64(3, 'UTC')) COMMENT 'end of a rotated-out key''s overlap; NULL = current'`,
    ],
  },
  {
    version: 4,
    name: 'device bindings over time and gateway phones',
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.device_bindings (
    tenant_id String,
    device_id String,
    patient_id String COMMENT 'empty = bound to nobody from valid_from on',
    valid_from DateTime64(3, 'UTC'),
    recorded_at DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (tenant_id, device_id, valid_from)`,
      `ALTER TABLE ${db}.devices ADD COLUMN IF NOT EXISTS gateway_id String DEFAULT '' COMMENT 'the gateway phone that may publish for this device; empty = none'`,
    ],
  },
  {
    version: 5,
    name: 'insert deduplication: a batch re-inserted after a crash (same token) is stored once',
    statements: (db) => ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status', 'device_sequences'].map((t) =>
      `ALTER TABLE ${db}.${t} MODIFY SETTING non_replicated_deduplication_window = 10000`),
  },
  {
    version: 6,
    name: 'personal accounts and alarm acknowledgements',
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.users (
    tenant_id String COMMENT 'empty for platform administrators',
    user_id String,
    role LowCardinality(String),
    password_hash String COMMENT 'scrypt; never the password',
    disabled UInt8,
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (tenant_id, user_id)`,
      `CREATE TABLE IF NOT EXISTS ${db}.alarm_acks (
    tenant_id LowCardinality(String),
    device_id String,
    seq UInt64,
    acknowledged_by String,
    ts DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (tenant_id, device_id, seq, ts)`,
    ],
  },
  {
    version: 7,
    name: 'data-subject rights: age, retention choices, legal holds, restrictions, rectifications, erasure receipts, access audit',
    statements: (db) => [
      `ALTER TABLE ${db}.patients ADD COLUMN IF NOT EXISTS birth_date Nullable(Date) COMMENT 'only for the minimum-age rule; kept out of telemetry'`,
      `ALTER TABLE ${db}.tenants ADD COLUMN IF NOT EXISTS min_age UInt8 DEFAULT 16 COMMENT 'below it, consent must come from a guardian'`,
      `CREATE TABLE IF NOT EXISTS ${db}.tenant_retention (
    tenant_id String,
    category LowCardinality(String),
    days UInt32,
    recorded_by String,
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (tenant_id, category)`,
      `CREATE TABLE IF NOT EXISTS ${db}.legal_holds (
    tenant_id String,
    patient_id String,
    action Enum8('hold' = 1, 'lift' = 2),
    reason String COMMENT 'a case reference, not health data',
    recorded_by String,
    ts DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (tenant_id, patient_id, ts)`,
      `CREATE TABLE IF NOT EXISTS ${db}.restrictions (
    tenant_id String,
    patient_id String,
    action Enum8('restrict' = 1, 'lift' = 2),
    reason String,
    recorded_by String,
    ts DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (tenant_id, patient_id, ts)`,
      `CREATE TABLE IF NOT EXISTS ${db}.rectifications (
    tenant_id String,
    patient_id String,
    target LowCardinality(String) COMMENT 'table.column the value lives in',
    device_id String,
    seq UInt64,
    idx UInt16,
    original Float64,
    corrected Float64,
    reason String,
    recorded_by String,
    ts DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (tenant_id, patient_id, device_id, seq, idx, ts)`,
      `CREATE TABLE IF NOT EXISTS ${db}.erasure_receipts (
    receipt_id String,
    tenant_id String,
    subject_hash String COMMENT 'sha256(salt, tenant, patient): proves which patient to whoever knows the id, names nobody',
    salt String,
    scope String COMMENT 'all, or the categories erased on a withdrawal',
    requested_by String,
    requested_at DateTime64(3, 'UTC'),
    row_counts Map(String, UInt64),
    hidden_at DateTime64(3, 'UTC') COMMENT 'lightweight delete done: invisible to every read',
    purged_at Nullable(DateTime64(3, 'UTC')) COMMENT 'forced merge done: physically removed'
) ENGINE = ReplacingMergeTree ORDER BY (tenant_id, receipt_id)`,
      `CREATE TABLE IF NOT EXISTS ${db}.access_log (
    tenant_id String,
    user_id String,
    role LowCardinality(String),
    patient_id String COMMENT 'empty for reads over the whole tenant',
    action LowCardinality(String),
    detail String COMMENT 'route and parameters; never values',
    remote_address String,
    ts DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (tenant_id, ts)`,
    ],
  },
  {
    version: 8,
    name: 'the TTL last written per table, so a start does not rewrite every part for an unchanged retention',
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.retention_applied (
    table_name String,
    ttl String COMMENT 'sha256 of the clauses written',
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(applied_at) ORDER BY table_name`,
    ],
  },
  {
    version: 9,
    name: 'parts on disk before an insert returns',
    // ClickHouse does not fsync a part by default; the write-ahead log deletes a segment once its
    // rows' insert returned, and consent, registry and receipt rows have no other copy, so a power
    // cut could lose acknowledged rows. Inserted and merged parts are fsync'd with their directory
    // (chDB keeps no old parts after a merge: old_parts_lifetime is 0 there).
    statements: (db) => DURABLE_TABLES.map((t) => `ALTER TABLE ${db}.${t} MODIFY SETTING ${DURABLE_PART_SETTINGS}`),
  },
  {
    version: 10,
    name: 'highest stored sequence number per device, one row each once merged',
    // device_sequences holds a row per message; "what has this device got stored" read from it costs a
    // scan that grows with every message (20 ms per tenant after a 10-minute soak, and embedded chDB runs
    // one query at a time, so inserts waited behind it). The head is written by the same INSERT
    // (a view on device_sequences, which the telemetry tables' views and the ingest path's direct
    // writes feed) and merges down to one row per device.
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.device_heads (
    tenant_id LowCardinality(String),
    device_id String,
    seq UInt64
) ENGINE = ReplacingMergeTree(seq) ORDER BY (tenant_id, device_id) SETTINGS ${DURABLE_PART_SETTINGS}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.device_sequences_heads TO ${db}.device_heads AS
    SELECT tenant_id, device_id, max(seq) AS seq FROM ${db}.device_sequences GROUP BY tenant_id, device_id`,
      `INSERT INTO ${db}.device_heads SELECT tenant_id, device_id, max(seq) FROM ${db}.device_sequences GROUP BY tenant_id, device_id`,
    ],
  },
  {
    version: 11,
    name: 'erasure set: the ids being erased, in memory only',
    // erasure statements select their subject from here (patient_id IN (SELECT ...)), so the text
    // ClickHouse keeps of every DELETE and UPDATE (mutation_*.txt, system.mutations) names no patient;
    // a Memory table's rows never reach disk (src/rights/erasure.ts)
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.erasure_set (
    erasure_id String,
    tenant_id String,
    patient_id String
) ENGINE = Memory`,
    ],
  },
  {
    version: 12,
    name: 'device presence: last seen, battery, firmware, certificate expiry per device',
    // the fleet view reads this (and memory), never the telemetry; written every few seconds with what
    // changed. Device facts only: no patient id, no health value.
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.device_presence (
    tenant_id LowCardinality(String),
    device_id String,
    last_seen Nullable(DateTime64(3, 'UTC')),
    battery Nullable(UInt8),
    firmware String,
    status_at Nullable(DateTime64(3, 'UTC')),
    cert_not_after Nullable(DateTime64(3, 'UTC')),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (tenant_id, device_id) SETTINGS ${DURABLE_PART_SETTINGS}`,
    ],
  },
  {
    version: 13,
    name: 'device revocation',
    statements: (db) => [
      `ALTER TABLE ${db}.devices ADD COLUMN IF NOT EXISTS revoked_at Nullable(DateTime64(3, 'UTC')) COMMENT 'lost or stolen: refused at CONNECT and for every message after' AFTER gateway_id`,
    ],
  },
  {
    version: 14,
    name: 'device heads from one view per telemetry table; sequence rows from the ingest path',
    // Every telemetry insert ran two views (DISTINCT into device_sequences, then max into device_heads),
    // each writing an fsync'd part: three parts per insert. The ingest path now logs each message's
    // sequence row itself, shipped once a second (src/storage/sequences.ts), and the old views are
    // dropped once the log is recovered (retireSequenceViews: a log from before this version still
    // needs them). device_heads only answers "what is queryable" (GET /admin/tenants/:t/sequences); the
    // replay windows come from device_sequences. So it keeps one view per table, written by the same
    // INSERT as the rows, and its parts are not fsync'd: after a power cut it may lag until the
    // device's next message, and nothing else reads it.
    statements: (db) => [
      `ALTER TABLE ${db}.device_heads MODIFY SETTING fsync_after_insert = 0, fsync_part_directory = 0, min_rows_to_fsync_after_merge = 0`,
      ...TELEMETRY.map((t) => `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${t}_heads TO ${db}.device_heads AS
    SELECT tenant_id, device_id, max(seq) AS seq FROM ${db}.${t} GROUP BY tenant_id, device_id`),
    ],
  },
  {
    version: 15,
    name: 'fewer merges of the tables that take an insert many times a second',
    // The merge selector's base (5 by default) sets how many parts of a size wait before they are merged:
    // embedded chDB, with its two merge threads, rewrote a row up to 92 times in 1,000 inserts of 1,400
    // rows (part level 92), and merges took as much CPU as the node's main thread in the fleet soak. With
    // 20: level 37 and 40 % less merge CPU for the same inserts, at the price of more parts to read (10
    // instead of 2 after those inserts; bench/RESULTS.md, issue 18 part 3).
    statements: (db) => [...TELEMETRY, 'device_sequences'].map((t) => `ALTER TABLE ${db}.${t} MODIFY SETTING merge_selector_base = 20`),
  },
  {
    version: 16,
    name: 'when each device head was stored',
    // GET /admin/tenants/:t/sequences answered every device of the tenant on every call: what the
    // simulator polls five times a second per tenant to time "device → queryable", a poll of 2,000 heads
    // costing the node 14 ms of CPU in ClickHouse and ~29 ms in all. With storedSince= it answers only the
    // heads stored since then. The column is filled by each insert itself (the default, evaluated once
    // per INSERT); the parts that exist get the time of this migration written into them, since a part
    // without the column would compute the default (now) at every read and look new to every poll.
    statements: (db) => [
      `ALTER TABLE ${db}.device_heads ADD COLUMN IF NOT EXISTS stored_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the head was inserted: what ?storedSince= selects on'`,
      `ALTER TABLE ${db}.device_heads MATERIALIZE COLUMN stored_at SETTINGS mutations_sync = 2`,
    ],
  },
]

/** The telemetry tables when migrations 14 and 15 were written: a migration does not change with later tables (each brings its own). */
const TELEMETRY = ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status'] as const

/** Every table migration 9 made durable (later migrations create theirs with DURABLE_PART_SETTINGS). */
const DURABLE_TABLES = [
  'schema_migrations',
  'vital_samples', 'spot_measurements', 'alarm_events', 'device_status', 'rejected_messages', 'tenants', 'patients', 'devices',
  'device_keys', 'consent_events', 'device_sequences', 'security_events', 'device_bindings', 'users', 'alarm_acks',
  'tenant_retention', 'legal_holds', 'restrictions', 'rectifications', 'erasure_receipts', 'access_log', 'retention_applied',
] as const

const DURABLE_PART_SETTINGS = 'fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1'
