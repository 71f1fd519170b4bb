/**
 * Portability export of one patient with 10,000,000 vital samples: NDJSON into
 * a sink that only counts bytes, against ClickHouse writing the same rows, same
 * columns, same order, as JSONEachRow itself (INSERT INTO FUNCTION file(): no
 * client in between). Reports rows/s, the ratio, and peak RSS growth of both.
 * Last, what the client's own stream() costs through chDB on 1,000,000 of the
 * rows: the time before its first row and the RSS it takes (it buffers).
 * Usage: npx tsx bench/export.bench.ts [rows=10000000]
 */
import { execFileSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { exportPatient } from '../src/rights/export.ts'
import { connect } from '../src/storage/connection.ts'
import { migrate } from '../src/storage/migrate.ts'
import { tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const rows = Number(process.argv[2] ?? 10_000_000)
const STREAM_ROWS = Math.min(rows, 1_000_000)
const MB = 1024 * 1024
const params = { tenant: 'bench', patient: 'p' }

if (process.argv[3] === 'insert') {
  // run as a child: the insert's memory must not count as (or hide) the export's
  const conn = await connect({ dataDir: process.argv[4]!, database: 'bench' })
  await migrate(conn)
  // eight metrics round robin, each sampled once a second (10M rows ≈ 14.5 days), 64 samples per message
  const metrics = ['heart_rate', 'hrv_rmssd', 'spo2', 'respiration_rate', 'skin_temperature', 'steps', 'active_energy', 'sleep_stage']
  const categories = ['vitals', 'vitals', 'vitals', 'vitals', 'vitals', 'activity', 'activity', 'sleep']
  await conn.client.command({
    query: `INSERT INTO bench.vital_samples SELECT 'bench', 'p', 'brace-1', {metrics:Array(String)}[number % 8 + 1] AS m, {categories:Array(String)}[number % 8 + 1],
      fromUnixTimestamp64Milli(toInt64(1706745600000 + intDiv(number, 8) * 1000), 'UTC'), 40 + (number % 600) / 10,
      if(m IN ('steps', 'active_energy', 'sleep_stage'), 60000, 0), 255, intDiv(number, 64), number % 64, 'care', 'consent', 1, now64(3)
      FROM numbers(${rows})`,
    query_params: { metrics, categories },
  })
  // settled parts, as an old history has: no background merge competes with either side for the CPU
  await conn.client.command({ query: 'OPTIMIZE TABLE bench.vital_samples FINAL' })
  await conn.client.close()
  process.exit(0)
}

const dir = tempDir('vf-bench-export-')
execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), String(rows), 'insert', dir.path], { stdio: ['ignore', 'ignore', 'inherit'] })
const conn = await connect({ dataDir: dir.path, database: 'bench' })
const { client } = conn

/** Runs fn while sampling RSS; returns its result, seconds and the peak RSS growth in MB. */
async function measured<T> (fn: () => Promise<T>): Promise<{ value: T; seconds: number; rssBeforeMB: number; peakRssGrowthMB: number }> {
  const before = process.memoryUsage().rss
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
  const t0 = performance.now()
  try {
    const value = await fn()
    return { value, seconds: (performance.now() - t0) / 1000, rssBeforeMB: Math.round(before / MB), peakRssGrowthMB: Math.round((Math.max(peak, process.memoryUsage().rss) - before) / MB) }
  } finally {
    clearInterval(sampler)
  }
}

let bytes = 0
const sink = new Writable({ highWaterMark: 1 << 20, write (chunk: Buffer, _enc, cb) { bytes += chunk.length; cb() } })
const ours = await measured(async () => await exportPatient(conn, { ...params, format: 'ndjson' }, sink))
if (ours.value.rows !== rows) throw new Error(`exported ${ours.value.rows} of ${rows} rows`)

const file = join(dir.path, 'baseline.ndjson')
const baseline = await measured(async () => await client.command({
  query: `INSERT INTO FUNCTION file({file:String}, JSONEachRow)
    SELECT 'vital_samples' AS table, ts, device_id AS device, seq, idx, metric, category, value, duration_ms, quality, purpose, legal_basis, consent_version, ingested_at
    FROM bench.vital_samples WHERE tenant_id = {tenant:String} AND patient_id = {patient:String} ORDER BY ts, device_id, seq, idx
    SETTINGS date_time_output_format = 'iso', output_format_json_quote_64bit_integers = 0`,
  query_params: { ...params, file },
}))

// @clickhouse/client's stream() through chDB: when does the first row arrive, and at what memory cost?
let firstRowAfter = 0
const stream = await measured(async () => {
  const t0 = performance.now()
  const rs = await client.query({
    query: `SELECT * FROM bench.vital_samples WHERE tenant_id = {tenant:String} AND patient_id = {patient:String} ORDER BY metric, ts LIMIT {n:UInt32}`,
    query_params: { ...params, n: STREAM_ROWS }, format: 'JSONEachRow',
  })
  let n = 0
  for await (const batch of rs.stream()) {
    if (n === 0) firstRowAfter = (performance.now() - t0) / 1000
    n += (batch as unknown[]).length
  }
  return n
})

const perSec = (n: number, s: number): number => Math.round(n / s)
const oursPerSec = perSec(rows, ours.seconds)
const baselinePerSec = perSec(rows, baseline.seconds)
process.stdout.write(JSON.stringify({
  benchmark: 'export', machine: machine(), rows,
  export: {
    format: 'ndjson', rowsPerSec: oursPerSec, seconds: Math.round(ours.seconds * 10) / 10, bytes, rssBeforeMB: ours.rssBeforeMB, peakRssGrowthMB: ours.peakRssGrowthMB,
  },
  baseline: {
    what: 'ClickHouse INSERT INTO FUNCTION file(JSONEachRow): same rows, columns and order', rowsPerSec: baselinePerSec,
    seconds: Math.round(baseline.seconds * 10) / 10, bytes: statSync(file).size, peakRssGrowthMB: baseline.peakRssGrowthMB,
  },
  ratio: Math.round(oursPerSec / baselinePerSec * 100) / 100,
  chdbClientStream: {
    rows: stream.value, firstRowAfterSeconds: Math.round(firstRowAfter * 100) / 100, seconds: Math.round(stream.seconds * 10) / 10,
    peakRssGrowthMB: stream.peakRssGrowthMB,
  },
}, null, 2) + '\n')
await client.close()
dir.remove()
