/**
 * Turns decoded messages into TabSeparated rows for the batcher, straight from
 * the protobuf objects (no per-sample objects). The gate decides per category
 * whether, and under which grant, a value may be stored: a row is written only
 * with the purpose, legal basis and consent version it was admitted under.
 */
import type { Category, Gate, Grant, Metric } from '../consent/index.ts'
import { METRIC_CATEGORY } from '../consent/index.ts'
import type { AlarmEvent, BraceletBatch, DeviceStatus, Series, SpotMeasurement } from '../decode/index.ts'
import { NULL, tsvNullable, tsvString, tsvStringArray } from './tsv.ts'

export interface RowContext {
  tenant: string
  /** '' when the device is bound to no patient. */
  patient: string
  device: string
  seq: number
  ingestedAt: number
  gate: Gate
}

export interface Encoded { chunk: string; rows: number; dropped: number }

export const COLUMNS = {
  vital_samples: ['tenant_id', 'patient_id', 'device_id', 'metric', 'category', 'ts', 'value', 'duration_ms', 'quality', 'seq', 'idx',
    'purpose', 'legal_basis', 'consent_version', 'ingested_at'],
  spot_measurements: ['tenant_id', 'patient_id', 'device_id', 'ts', 'meter_model', 'systolic', 'diastolic', 'pulse', 'spo2',
    'temperature', 'glucose', 'weight', 'seq', 'purpose', 'legal_basis', 'consent_version', 'ingested_at'],
  alarm_events: ['tenant_id', 'patient_id', 'device_id', 'ts', 'kind', 'battery', 'latitude', 'longitude', 'accuracy_m',
    'location_consent_version', 'seq', 'purpose', 'legal_basis', 'consent_version', 'ingested_at'],
  device_status: ['tenant_id', 'device_id', 'patient_id', 'ts', 'model', 'firmware', 'serial_number', 'battery', 'last_sync',
    'diagnostics', 'seq', 'purpose', 'legal_basis', 'consent_version', 'ingested_at'],
  rejected_messages: ['tenant_id', 'device_id', 'client_id', 'remote_address', 'topic', 'bytes', 'reason', 'detail', 'ts'],
  security_events: ['tenant_id', 'source', 'reasons', 'refusals', 'first_ts', 'ts'],
  /** Only for accepted messages that produced no rows (everything filtered); the others reach it through materialised views. */
  device_sequences: ['tenant_id', 'device_id', 'seq'],
} as const
export type TableName = keyof typeof COLUMNS

/** The tables that hold what devices sent (as opposed to refusals, events and bookkeeping). */
export const TELEMETRY_TABLES = ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status'] as const satisfies readonly TableName[]
export type TelemetryTable = (typeof TELEMETRY_TABLES)[number]

function provenance (g: Grant, ingestedAt: number): string {
  return `\t${g.purpose}\t${g.basis}\t${g.version}\t${ingestedAt}\n`
}

const SERIES: ReadonlyArray<readonly [keyof BraceletBatch, Metric, boolean]> = [
  // [field, metric, values are counts over the interval]
  ['heartRate', 'heart_rate', false],
  ['hrvRmssd', 'hrv_rmssd', false],
  ['spo2', 'spo2', false],
  ['respirationRate', 'respiration_rate', false],
  ['skinTemperature', 'skin_temperature', false],
  ['steps', 'steps', true],
  ['activeEnergy', 'active_energy', true],
]

export function vitalRows (ctx: RowContext, m: BraceletBatch): Encoded {
  const head = `${ctx.tenant}\t${ctx.patient}\t${ctx.device}\t`
  const seq = String(ctx.seq) // once per message, not per row
  const start = m.windowStartMs
  let chunk = ''
  let rows = 0
  let dropped = 0
  let idx = 0
  for (const [field, metric, isCount] of SERIES) {
    const s = m[field] as Series | null | undefined
    const n = s?.values.length ?? 0
    if (s == null || n === 0) continue
    const category: Category = METRIC_CATEGORY[metric]
    const g = ctx.gate(category)
    if (g === null) { dropped += n; idx += n; continue }
    const mid = `${metric}\t${category}\t`
    const tail = provenance(g, ctx.ingestedAt)
    const duration = isCount ? s.intervalMs : 0
    const quality = metric === 'heart_rate' ? m.heartRateQuality : null
    const t0 = start + s.offsetMs
    for (let i = 0; i < n; i++, idx++) {
      const ts = t0 + i * s.intervalMs
      if (ts < g.fromMs) { dropped++; continue }
      const q = quality !== null && quality.length > i ? quality[i]! : 255
      chunk += `${head}${mid}${ts}\t${s.values[i]!}\t${duration}\t${q}\t${seq}\t${idx}${tail}`
      rows++
    }
  }
  if (m.sleep.length > 0) {
    const g = ctx.gate('sleep')
    const tail = g === null ? '' : provenance(g, ctx.ingestedAt)
    for (const e of m.sleep) {
      const ts = start + e.offsetMs
      if (g === null || ts < g.fromMs) { dropped++; idx++; continue }
      chunk += `${head}sleep_stage\tsleep\t${ts}\t${e.stage}\t${e.durationMs}\t255\t${seq}\t${idx++}${tail}`
      rows++
    }
  }
  const g = ctx.gate('device_diagnostics')
  if (g !== null) {
    chunk += `${head}battery\tdevice_diagnostics\t${start + m.windowMs}\t${m.batteryPercent}\t0\t255\t${seq}\t${idx}${provenance(g, ctx.ingestedAt)}`
    rows++
  } else {
    dropped++
  }
  return { chunk, rows, dropped }
}

export function spotRows (ctx: RowContext, m: SpotMeasurement): Encoded {
  const g = ctx.gate('spot_measurements')
  if (g === null || m.measuredAtMs < g.fromMs) return { chunk: '', rows: 0, dropped: 1 }
  const chunk = `${ctx.tenant}\t${ctx.patient}\t${ctx.device}\t${m.measuredAtMs}\t${tsvString(m.meterModel)}\t` +
    `${tsvNullable(m.systolic)}\t${tsvNullable(m.diastolic)}\t${tsvNullable(m.pulse)}\t${tsvNullable(m.spo2)}\t` +
    `${tsvNullable(m.temperature)}\t${tsvNullable(m.glucose)}\t${tsvNullable(m.weight)}\t${ctx.seq}${provenance(g, ctx.ingestedAt)}`
  return { chunk, rows: 1, dropped: 0 }
}

const ALARM_KIND = ['unspecified', 'button_press', 'fall_detected', 'low_battery', 'heartbeat'] as const

export function alarmRows (ctx: RowContext, m: AlarmEvent): Encoded {
  const g = ctx.gate('alarm_events')
  if (g === null) return { chunk: '', rows: 0, dropped: 1 }
  // the alarm itself rides on the contract; where it happened needs location consent
  const loc = m.location
  const lg = loc == null ? null : ctx.gate('location')
  const located = loc != null && lg !== null && m.occurredAtMs >= lg.fromMs
  const where = located
    ? `${loc.latitude}\t${loc.longitude}\t${loc.accuracyM}\t${lg.version}`
    : `${NULL}\t${NULL}\t${NULL}\t0`
  const chunk = `${ctx.tenant}\t${ctx.patient}\t${ctx.device}\t${m.occurredAtMs}\t${ALARM_KIND[m.kind] ?? 'unspecified'}\t` +
    `${m.batteryPercent}\t${where}\t${ctx.seq}${provenance(g, ctx.ingestedAt)}`
  return { chunk, rows: 1, dropped: loc != null && !located ? 1 : 0 }
}

export function statusRows (ctx: RowContext, m: DeviceStatus): Encoded {
  const g = ctx.gate('device_diagnostics')
  if (g === null) return { chunk: '', rows: 0, dropped: 1 }
  const chunk = `${ctx.tenant}\t${ctx.device}\t${ctx.patient}\t${m.reportedAtMs}\t${tsvString(m.model)}\t${tsvString(m.firmware)}\t` +
    `${tsvString(m.serialNumber)}\t${m.batteryPercent}\t${m.lastSyncMs === 0 ? NULL : m.lastSyncMs}\t` +
    `${tsvStringArray(m.diagnostics)}\t${ctx.seq}${provenance(g, ctx.ingestedAt)}`
  return { chunk, rows: 1, dropped: 0 }
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

export function securityEventRow (e: { tenant: string; source: string; reasons: Record<string, number>; count: number; firstMs: number; lastMs: number }): string {
  const reasons = Object.entries(e.reasons).map(([k, v]) => `'${tsvString(k)}':${v}`).join(',')
  return `${tsvString(e.tenant)}\t${tsvString(e.source)}\t{${reasons}}\t${e.count}\t${e.firstMs}\t${e.lastMs}\n`
}

export function rejectionRow (r: Rejection): string {
  return `${tsvString(r.tenant)}\t${tsvString(r.device)}\t${tsvString(r.clientId)}\t${tsvString(r.remoteAddress)}\t` +
    `${tsvString(r.topic)}\t${r.bytes}\t${r.reason}\t${tsvString(r.detail)}\t${r.ts}\n`
}
