/**
 * Turns decoded messages into RowBinary rows for the batcher, straight from
 * the protobuf objects (no per-sample objects, no number-to-text). The gate decides per category
 * whether, and under which grant, a value may be stored: a row is written only
 * with the purpose, legal basis and consent version it was admitted under.
 */
import type { Category, Gate, Grant } from '../consent/index.ts'
import { METRIC_CATEGORY, covers } from '../consent/index.ts'
import type { AlarmEvent, BraceletBatch, DeviceStatus, Series, SpotMeasurement } from '../decode/index.ts'
import { BRACELET_SERIES, SPOT, SPOT_COLUMNS, STREAM_TABLE } from '../catalogue/index.ts'
import { RowWriter, encodeStrings } from './row-binary.ts'

export interface RowContext {
  tenant: string
  /** '' when the device is bound to no patient. */
  patient: string
  device: string
  /** uint64, exact. */
  seq: bigint
  ingestedAt: number
  gate: Gate
}

export interface Encoded { chunk: Buffer; rows: number; dropped: number }

/** Column order of every table's RowBinary rows; the types come from the table itself. */
export const COLUMNS = {
  vital_samples: ['tenant_id', 'patient_id', 'device_id', 'metric', 'category', 'ts', 'value', 'duration_ms', 'quality', 'seq', 'idx',
    'purpose', 'legal_basis', 'consent_version', 'ingested_at'],
  spot_measurements: ['tenant_id', 'patient_id', 'device_id', 'ts', 'meter_model', ...SPOT_COLUMNS, 'seq', 'purpose', 'legal_basis', 'consent_version', 'ingested_at'],
  alarm_events: ['tenant_id', 'patient_id', 'device_id', 'ts', 'kind', 'battery', 'latitude', 'longitude', 'accuracy_m',
    'location_consent_version', 'seq', 'purpose', 'legal_basis', 'consent_version', 'ingested_at'],
  device_status: ['tenant_id', 'device_id', 'patient_id', 'ts', 'model', 'firmware', 'serial_number', 'battery', 'last_sync',
    'diagnostics', 'seq', 'purpose', 'legal_basis', 'consent_version', 'ingested_at'],
  rejected_messages: ['tenant_id', 'device_id', 'client_id', 'remote_address', 'topic', 'bytes', 'reason', 'detail', 'ts'],
  security_events: ['tenant_id', 'source', 'reasons', 'refusals', 'first_ts', 'ts'],
  /** Every accepted message's sequence number (with its rows, or alone when everything was filtered): replay windows after a restart. */
  device_sequences: ['tenant_id', 'device_id', 'seq'],
  /** A message stored without rows (everything filtered); the telemetry tables' views write the others' heads. */
  device_heads: ['tenant_id', 'device_id', 'seq'],
} as const
export type TableName = keyof typeof COLUMNS

/** The tables that hold what devices sent (as opposed to refusals, events and bookkeeping). */
export const TELEMETRY_TABLES = Object.values(STREAM_TABLE) satisfies readonly TableName[]
export type TelemetryTable = (typeof TELEMETRY_TABLES)[number]

/** Tables whose rows were acknowledged to a device: they go through a write-ahead log. */
export const LOGGED_TABLES: ReadonlySet<TableName> = new Set<TableName>([...TELEMETRY_TABLES, 'device_sequences'])

// encoding is synchronous and the process single-threaded: one writer serves every call
const w = new RowWriter()

/** Purpose, legal basis and consent version of a grant, encoded once per grant (ingested_at follows per row). */
const GRANT_BYTES = new WeakMap<Grant, Buffer>()
function grantBytes (g: Grant): Buffer {
  let b = GRANT_BYTES.get(g)
  if (b === undefined) {
    const r = new RowWriter(64)
    r.string(g.purpose)
    r.string(g.basis)
    r.u32(g.version)
    b = r.take()
    GRANT_BYTES.set(g, b)
  }
  return b
}

function provenance (g: Grant, ingestedAt: number): void {
  w.raw(grantBytes(g))
  w.time(ingestedAt)
}

function ids (a: string, b: string, c: string): void {
  w.string(a)
  w.string(b)
  w.string(c)
}

/** [field, metric, values cover their interval] of every Series the catalogue lists, in its order. */
const SERIES = BRACELET_SERIES.map((s) => [s.field, s.metric, s.extent === 'interval'] as const)
/** The decoded fields of the spot value columns, in table order. */
const SPOT_FIELDS = SPOT_COLUMNS.map((c) => SPOT[c].field)

const EMPTY: Buffer = Buffer.alloc(0)
const LABELS = new Map<string, Buffer>()
/** metric + category, encoded once per process. */
function labels (metric: string, category: Category): Buffer {
  let b = LABELS.get(metric)
  if (b === undefined) { b = encodeStrings(metric, category); LABELS.set(metric, b) }
  return b
}

const seqBytes = Buffer.alloc(8)

export function vitalRows (ctx: RowContext, m: BraceletBatch): Encoded {
  w.reset()
  const start = m.windowStartMs
  const at = ctx.ingestedAt
  // every row repeats the ids, its metric, the sequence number and its provenance: encode those once
  const who = encodeStrings(ctx.tenant, ctx.patient, ctx.device)
  seqBytes.writeBigUInt64LE(ctx.seq)
  let rows = 0
  let dropped = 0
  let idx = 0
  for (const [field, metric, isCount] of SERIES) {
    const s: Series | null | undefined = m[field]
    const n = s?.values.length ?? 0
    if (s == null || n === 0) continue
    const category: Category = METRIC_CATEGORY[metric]
    const g = ctx.gate(category)
    if (g === null) { dropped += n; idx += n; continue }
    const label = labels(metric, category)
    const grant = grantBytes(g)
    const duration = isCount ? s.intervalMs : 0
    const quality = metric === 'heart_rate' ? m.heartRateQuality : null
    const t0 = start + s.offsetMs
    // intervalMs > 0 (decode.ts): the samples before the grant's start are a prefix of the series
    const from = g.fromMs <= t0 ? 0 : Math.min(n, Math.ceil((g.fromMs - t0) / s.intervalMs))
    w.sampleRun(who, label, t0, s.intervalMs, s.values, from, quality, duration, seqBytes, idx, grant, at)
    dropped += from
    rows += n - from
    idx += n
  }
  if (m.sleep.length > 0) {
    const g = ctx.gate('sleep')
    const label = labels('sleep_stage', 'sleep')
    const grant = g === null ? EMPTY : grantBytes(g)
    for (const e of m.sleep) {
      const ts = start + e.offsetMs
      if (covers(g, ts)) { w.sampleRow(who, label, ts, e.stage, e.durationMs, 255, seqBytes, idx, grant, at); rows++ } else dropped++
      idx++
    }
  }
  const g = ctx.gate('device_diagnostics')
  if (g === null) dropped++
  else { w.sampleRow(who, labels('battery', 'device_diagnostics'), start + m.windowMs, m.batteryPercent, 0, 255, seqBytes, idx, grantBytes(g), at); rows++ }
  return { chunk: w.take(), rows, dropped }
}

const NONE: Encoded = { chunk: EMPTY, rows: 0, dropped: 1 }

export function spotRows (ctx: RowContext, m: SpotMeasurement): Encoded {
  const g = ctx.gate('spot_measurements')
  if (!covers(g, m.measuredAtMs)) return NONE
  w.reset()
  ids(ctx.tenant, ctx.patient, ctx.device)
  w.time(m.measuredAtMs)
  w.string(m.meterModel)
  for (const f of SPOT_FIELDS) w.nullableF32(m[f])
  w.u64n(ctx.seq)
  provenance(g, ctx.ingestedAt)
  return { chunk: w.take(), rows: 1, dropped: 0 }
}

const ALARM_KIND = ['unspecified', 'button_press', 'fall_detected', 'low_battery', 'heartbeat'] as const

export function alarmRows (ctx: RowContext, m: AlarmEvent): Encoded {
  const g = ctx.gate('alarm_events')
  if (g === null) return NONE
  // the alarm itself rides on the contract; where it happened needs location consent
  const loc = m.location
  const lg = loc == null ? null : ctx.gate('location')
  const located = loc != null && covers(lg, m.occurredAtMs)
  w.reset()
  ids(ctx.tenant, ctx.patient, ctx.device)
  w.time(m.occurredAtMs)
  w.string(ALARM_KIND[m.kind] ?? 'unspecified')
  w.u8(m.batteryPercent)
  w.nullableF64(located ? loc.latitude : null)
  w.nullableF64(located ? loc.longitude : null)
  w.nullableF32(located ? loc.accuracyM : null)
  w.u32(located ? lg.version : 0)
  w.u64n(ctx.seq)
  provenance(g, ctx.ingestedAt)
  return { chunk: w.take(), rows: 1, dropped: loc != null && !located ? 1 : 0 }
}

export function statusRows (ctx: RowContext, m: DeviceStatus): Encoded {
  const g = ctx.gate('device_diagnostics')
  if (g === null) return NONE
  w.reset()
  ids(ctx.tenant, ctx.device, ctx.patient)
  w.time(m.reportedAtMs)
  w.string(m.model)
  w.string(m.firmware)
  w.string(m.serialNumber)
  w.u8(m.batteryPercent)
  w.nullableTime(m.lastSyncMs === 0 ? null : m.lastSyncMs)
  w.strings(m.diagnostics)
  w.u64n(ctx.seq)
  provenance(g, ctx.ingestedAt)
  return { chunk: w.take(), rows: 1, dropped: 0 }
}

export interface Rejection {
  tenant: string
  device: string
  clientId: string
  remoteAddress: string
  topic: string
  bytes: number
  reason: string
  detail: string
  ts: number
}

export function rejectionRow (r: Rejection): Buffer {
  w.reset()
  for (const s of [r.tenant, r.device, r.clientId, r.remoteAddress, r.topic.slice(0, 200)]) w.string(s)
  w.u32(r.bytes)
  w.string(r.reason)
  w.string(r.detail)
  w.time(r.ts)
  return w.take()
}

export function securityEventRow (e: { tenant: string; source: string; reasons: Record<string, number>; count: number; firstMs: number; lastMs: number }): Buffer {
  w.reset()
  w.string(e.tenant)
  w.string(e.source)
  w.countMap(e.reasons)
  w.u32(e.count)
  w.time(e.firstMs)
  w.time(e.lastMs)
  return w.take()
}

/** A device_sequences (or device_heads) row. */
export function sequenceRow (tenant: string, device: string, seq: bigint): Buffer {
  w.reset()
  w.string(tenant)
  w.string(device)
  w.u64n(seq)
  return w.take()
}
