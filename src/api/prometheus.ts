/**
 * Prometheus exposition of the node's counters. Values are read from the
 * ingest counters when scraped, so the hot path pays nothing for them. Labels
 * carry tables and reason codes, tenant ids only when asked for (they identify
 * customers), never patient ids.
 */
import { readdir } from 'node:fs/promises'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { threadCpuSecondsAsync } from './thread-cpu.ts'

/**
 * prom-client's defaults that walk every socket on the main thread at each scrape: open fds
 * (readdirSync of /proc/self/fd) and active handles and resources (arrays of every handle,
 * grouped by constructor name). At 10,000 TLS connections they were nine tenths of a scrape's
 * main-thread time in a soak's CPU profile, and a scrape held alarms and PUBACKs for hundreds of
 * milliseconds (bench/metrics-scrape.bench.ts). Connections are counted by vitalflow_connections;
 * open fds are read off the main thread below.
 */
export const HEAVY_DEFAULT_METRICS = [
  'process_open_fds', 'nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total',
] as const

export interface MetricsSource {
  accepted: Record<string, number>
  rejected: Record<string, number>
  unacknowledged: Record<string, number>
  rowsStored: Record<string, number>
  rowsFiltered: number
  securityEvents: number
  walBytes: () => number
  walBudgetBytes: number
  /** Null while PUBACKs can go out; else the code devices' messages are refused with (full disk, log budget). */
  notAcknowledging: () => string | null
  queuedRows: () => Record<string, number>
  connections: () => Record<string, number>
  /** Live entries each bounded map (sessions, back-off sources, rate buckets, refusal tallies) dropped at its cap, by map. */
  evictions?: () => Record<string, number>
  /** Main-thread seconds per step of the hot path (sampled: metrics.ts). */
  stageSeconds?: Record<string, number>
  /** Overload control: messages waiting for storage now, shedding episodes, and messages that waited per tenant. */
  admission?: () => { waiting: number; episodes: number; waitedByTenant: Map<string, number> }
  /** The secret hasher's counters, if there is one. */
  hashing?: () => { inFlight: number; queued: number; refused: number; completed: number }
  /** Bulk connections' reads put off to a later turn of the event loop (src/broker/read-scheduler.ts): waiting now, and in all. */
  reads?: () => { waiting: number; deferred: number }
}

export interface Prometheus {
  registry: Registry
  observeFlush: (table: string, rows: number, seconds: number, ok: boolean) => void
  /** A write-ahead log group commit of a lane: what every PUBACK (and, in the priority lane, alarm relay) waits for. */
  observeWalSync: (seconds: number, lane?: string) => void
}

function fromRecord (name: string, help: string, label: string, read: () => Record<string, number> | Promise<Record<string, number>>, registry: Registry): void {
  new Counter({
    name, help, labelNames: [label], registers: [registry],
    async collect () {
      const values = await read()
      this.reset()
      for (const [k, v] of Object.entries(values)) this.inc({ [label]: k }, v)
    },
  })
}

export interface PrometheusOptions {
  /** Connections by tenant id; otherwise one unlabelled total (VF_METRICS_TENANT_LABELS). */
  tenantLabels?: boolean
}

export function createPrometheus (src: MetricsSource, opts: PrometheusOptions = {}): Prometheus {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'vitalflow_' })
  for (const name of HEAVY_DEFAULT_METRICS) registry.removeSingleMetric(`vitalflow_${name}`)
  new Gauge({
    name: 'vitalflow_process_open_fds', help: 'Number of open file descriptors (read by a libuv thread, not the event loop)', registers: [registry],
    async collect () {
      // read in libuv's thread pool; the listing includes the descriptor that read it
      if (process.platform === 'linux') this.set((await readdir('/proc/self/fd')).length - 1)
    },
  })
  fromRecord('vitalflow_messages_accepted_total', 'Messages accepted into the write-ahead log, by table', 'table', () => src.accepted, registry)
  fromRecord('vitalflow_messages_rejected_total', 'Messages and connections refused, by reason code', 'reason', () => src.rejected, registry)
  fromRecord('vitalflow_messages_unacknowledged_total', 'Accepted messages that could not be made durable (no PUBACK), by code', 'code', () => src.unacknowledged, registry)
  fromRecord('vitalflow_rows_logged_total', 'Rows made durable in the write-ahead log, by table', 'table', () => src.rowsStored, registry)
  new Counter({ name: 'vitalflow_rows_filtered_total', help: 'Values not stored because their category had no valid legal basis', registers: [registry], collect () { this.reset(); this.inc(src.rowsFiltered) } })
  new Counter({ name: 'vitalflow_security_events_total', help: 'Bursts of refusals raised as security events', registers: [registry], collect () { this.reset(); this.inc(src.securityEvents) } })
  new Gauge({ name: 'vitalflow_wal_bytes', help: 'Write-ahead log bytes not yet released by checkpoints', registers: [registry], collect () { this.set(src.walBytes()) } })
  new Gauge({
    name: 'vitalflow_acknowledging', help: '1 while PUBACKs can go out; 0 with the reason (ING_ERR_DISK_FULL, ING_ERR_WAL_IO, ING_ERR_BACKPRESSURE; ING_ERR_STORAGE with VF_ACK_AFTER=store while inserts fail) while they cannot',
    labelNames: ['reason'], registers: [registry],
    collect () { this.reset(); const r = src.notAcknowledging(); if (r === null) this.set({ reason: '' }, 1); else this.set({ reason: r }, 0) },
  })
  new Gauge({ name: 'vitalflow_wal_budget_bytes', help: 'Write-ahead log disk budget', registers: [registry], collect () { this.set(src.walBudgetBytes) } })
  new Gauge({
    name: 'vitalflow_batch_queued_rows', help: 'Rows waiting for the next insert, by table', labelNames: ['table'], registers: [registry],
    collect () { for (const [t, n] of Object.entries(src.queuedRows())) this.set({ table: t }, n) },
  })
  if (opts.tenantLabels === true) {
    new Gauge({
      name: 'vitalflow_connections', help: 'Authenticated device connections, by tenant', labelNames: ['tenant'], registers: [registry],
      collect () { this.reset(); for (const [t, n] of Object.entries(src.connections())) this.set({ tenant: t }, n) },
    })
  } else {
    new Gauge({
      name: 'vitalflow_connections', help: 'Authenticated device connections', registers: [registry],
      collect () { let total = 0; for (const n of Object.values(src.connections())) total += n; this.set(total) },
    })
  }
  const rows = new Histogram({ name: 'vitalflow_insert_rows', help: 'Rows per ClickHouse insert', labelNames: ['table'], buckets: [1, 10, 100, 1000, 10_000, 100_000], registers: [registry] })
  const seconds = new Histogram({ name: 'vitalflow_insert_seconds', help: 'ClickHouse insert latency', labelNames: ['table', 'outcome'], buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10], registers: [registry] })
  const walSync = new Histogram({
    name: 'vitalflow_wal_sync_seconds', help: 'Write-ahead log group commit (one O_DSYNC write) by lane (bulk telemetry; priority: alarms and status); PUBACKs wait for it',
    labelNames: ['lane'], buckets: [0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2], registers: [registry],
  })
  fromRecord('vitalflow_thread_cpu_seconds_total', 'CPU seconds of this process by thread (main; libuv-pool, where chDB statements run; native-relay, where sample batches are written as Native; ClickHouse ThreadPool, MergeMutate …; node, V8 platform workers), live threads only', 'thread', async () => await threadCpuSecondsAsync(), registry)
  if (src.stageSeconds !== undefined) {
    const stages = src.stageSeconds
    fromRecord('vitalflow_stage_seconds_total', 'Main-thread seconds per step of the ingest path (one message in 16 timed, scaled up)', 'stage', () => stages, registry)
  }
  if (src.admission !== undefined) admissionMetrics(src.admission, registry, opts.tenantLabels === true)
  if (src.hashing !== undefined) hashingMetrics(src.hashing, registry)
  const reads = src.reads
  if (reads !== undefined) {
    new Gauge({ name: 'vitalflow_reads_waiting', help: 'Bulk connections\' data waiting for a later turn of the event loop (their sockets paused), so that alarms are read first', registers: [registry], collect () { this.set(reads().waiting) } })
    new Counter({ name: 'vitalflow_reads_deferred_total', help: 'Bulk connections\' reads put off to a later turn of the event loop while the node was busy', registers: [registry], collect () { this.reset(); this.inc(reads().deferred) } })
  }
  if (src.evictions !== undefined) {
    fromRecord('vitalflow_bounded_map_evictions_total', 'Live entries dropped because a bounded map was full (a flood of distinct sources, identities or sessions)', 'map', src.evictions, registry)
  }
  return {
    registry,
    observeWalSync: (s, lane = 'bulk') => { walSync.observe({ lane }, s) },
    observeFlush: (table, n, s, ok) => {
      if (ok) rows.observe({ table }, n)
      seconds.observe({ table, outcome: ok ? 'ok' : 'error' }, s)
    },
  }
}

function hashingMetrics (read: NonNullable<MetricsSource['hashing']>, registry: Registry): void {
  new Gauge({ name: 'vitalflow_hash_in_flight', help: 'Secret and password hashes being computed (at most VF_HASH_THREADS)', registers: [registry], collect () { this.set(read().inFlight) } })
  new Gauge({ name: 'vitalflow_hash_queued', help: 'Secret and password checks waiting for a hash thread', registers: [registry], collect () { this.set(read().queued) } })
  new Counter({ name: 'vitalflow_hash_completed_total', help: 'Secret and password hashes computed', registers: [registry], collect () { this.reset(); this.inc(read().completed) } })
  new Counter({ name: 'vitalflow_hash_refused_total', help: 'Secret and password checks refused because the hash queue was full (ING_ERR_AUTH_BUSY)', registers: [registry], collect () { this.reset(); this.inc(read().refused) } })
}

function admissionMetrics (read: NonNullable<MetricsSource['admission']>, registry: Registry, tenantLabels: boolean): void {
  new Gauge({ name: 'vitalflow_admission_waiting', help: 'Bulk messages waiting because storage is behind (their senders are not read meanwhile)', registers: [registry], collect () { this.set(read().waiting) } })
  new Counter({ name: 'vitalflow_admission_shedding_total', help: 'Times storage fell behind and bulk senders were slowed', registers: [registry], collect () { this.reset(); this.inc(read().episodes) } })
  new Counter({
    name: 'vitalflow_admission_waited_total', help: 'Bulk messages that waited for storage, by tenant (VF_METRICS_TENANT_LABELS) or in total',
    labelNames: tenantLabels ? ['tenant'] : [], registers: [registry],
    collect () {
      this.reset()
      let total = 0
      for (const [t, n] of read().waitedByTenant) { if (tenantLabels) this.inc({ tenant: t }, n); total += n }
      if (!tenantLabels) this.inc(total)
    },
  })
}
