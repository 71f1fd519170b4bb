/**
 * FHIR export size: one Observation per sample against valueSampledData (one
 * Observation per metric and message), for days of one bracelet from the
 * signal model (devices/corsano.ts: 1 Hz heart rate, per-minute SpO2,
 * respiration, skin temperature, steps and energy, 5-minute RMSSD, 30 s sleep
 * epochs at night, one-minute messages), stored as the ingest path stores them.
 * Reports bytes, gzip bytes, Observations and seconds of both.
 * Usage: npx tsx bench/fhir-sampled.bench.ts [days=1]
 */
import { Writable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { createBraceletModel } from '../devices/corsano.ts'
import { METRIC_CATEGORY, type Metric } from '../src/consent/index.ts'
import type { BraceletBatch, Series } from '../src/decode/index.ts'
import { exportPatient } from '../src/rights/export.ts'
import { connect } from '../src/storage/connection.ts'
import { migrate } from '../src/storage/migrate.ts'
import { tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const days = Number(process.argv[2] ?? 1)
const MIN = 60_000
const T0 = Date.UTC(2024, 4, 1)
const dir = tempDir('vf-bench-fhir-')
const conn = await connect({ dataDir: dir.path, database: 'bench' })
await migrate(conn)

const time = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace('Z', '')
/** The rows vitalRows (src/storage/rows.ts) writes for a batch, as JSON. */
function rows (seq: number, m: BraceletBatch): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  let idx = 0
  const row = (metric: Metric, ts: number, value: number, duration: number): void => {
    out.push({ tenant_id: 'bench', patient_id: 'p', device_id: 'brace-1', metric, category: METRIC_CATEGORY[metric], ts: time(ts), value, duration_ms: duration, quality: 255, seq, idx: idx++, purpose: 'care', legal_basis: 'consent', consent_version: 1, ingested_at: time(ts) })
  }
  const series: Array<[Series | null | undefined, Metric, boolean]> = [
    [m.heartRate, 'heart_rate', false], [m.hrvRmssd, 'hrv_rmssd', false], [m.spo2, 'spo2', false], [m.respirationRate, 'respiration_rate', false],
    [m.skinTemperature, 'skin_temperature', false], [m.steps, 'steps', true], [m.activeEnergy, 'active_energy', true],
  ]
  for (const [s, metric, count] of series) s?.values.forEach((v, i) => { row(metric, m.windowStartMs + s.offsetMs + i * s.intervalMs, v, count ? s.intervalMs : 0) })
  for (const e of m.sleep) row('sleep_stage', m.windowStartMs + e.offsetMs, e.stage, e.durationMs)
  row('battery', m.windowStartMs + m.windowMs, m.batteryPercent, 0)
  return out
}

const model = createBraceletModel(7)
let stored = 0
for (let w = 0; w < days * 1440; w += 60) {
  const values = []
  for (let i = w; i < w + 60; i++) values.push(...rows(i + 1, model.nextBatch(T0 + i * MIN)))
  await conn.client.insert({ table: 'bench.vital_samples', values, format: 'JSONEachRow' })
  stored += values.length
}

interface Size { observations: number; bytes: number; gzipBytes: number; seconds: number }
async function run (sampled: boolean): Promise<Size> {
  const chunks: Buffer[] = []
  const out = new Writable({ write (c: Buffer, _e, cb) { chunks.push(c); cb() } })
  const t0 = performance.now()
  const r = await exportPatient(conn, { tenant: 'bench', patient: 'p', format: 'fhir', sampled }, out)
  const seconds = (performance.now() - t0) / 1000
  const body = Buffer.concat(chunks)
  return { observations: r.resources, bytes: body.length, gzipBytes: gzipSync(body).length, seconds: Math.round(seconds * 100) / 100 }
}

const perSample = await run(false)
const sampled = await run(true)
process.stdout.write(JSON.stringify({
  benchmark: 'fhir-sampled', machine: machine(), days, storedRows: stored,
  perSample, sampled,
  ratio: { bytes: Math.round(sampled.bytes / perSample.bytes * 1000) / 1000, gzipBytes: Math.round(sampled.gzipBytes / perSample.gzipBytes * 1000) / 1000, observations: Math.round(sampled.observations / perSample.observations * 1000) / 1000 },
}, null, 2) + '\n')
await conn.client.close()
dir.remove()
