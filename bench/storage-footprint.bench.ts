/**
 * Disk per stored bracelet sample, for sizing (docs/scaling.md): N bracelets × H hours of one-minute
 * batches from the signal model (devices/corsano.ts), encoded by the ingest path's own row encoder
 * (vitalRows, RowBinary) and inserted into chDB's vital_samples the way the embedded node inserts
 * them (a RowBinary file through file()), with the schema's codecs and the materialized views that
 * write device_sequences and device_heads; then merged to one part per partition (OPTIMIZE FINAL).
 * device_sequences' rows are what a node on a ClickHouse server writes (the same rows, from the ingest path);
 * an embedded node keeps its replay windows in data/replay-windows instead (src/storage/replay-windows.ts).
 * Reports rows, bytes on disk, compressed and uncompressed bytes per row, per column, and for the
 * bookkeeping the same messages write, and the RowBinary bytes per row the write-ahead log holds.
 * Usage: npx tsx bench/storage-footprint.bench.ts [bracelets=100] [hours=24] [tenants=5]
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createBraceletModel } from '../devices/index.ts'
import type { Grant } from '../src/consent/index.ts'
import { sqlString } from '../src/sql.ts'
import { connect } from '../src/storage/connection.ts'
import { migrate } from '../src/storage/migrate.ts'
import { COLUMNS, vitalRows } from '../src/storage/rows.ts'
import { tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const bracelets = Number(process.argv[2] ?? 100)
const hours = Number(process.argv[3] ?? 24)
const tenants = Number(process.argv[4] ?? 5)
const MIN = 60_000
const T0 = Date.UTC(2026, 10, 2)
const GRANT: Grant = { purpose: 'care', basis: 'consent', version: 3, fromMs: 0 }

const dir = tempDir('vf-bench-footprint-')
const conn = await connect({ dataDir: dir.path, database: 'bench' })
await migrate(conn)
const q = async <T>(query: string): Promise<T[]> => await (await conn.client.query({ query, format: 'JSONEachRow' })).json<T>()

const cols = COLUMNS.vital_samples
const types = new Map((await q<{ name: string; type: string }>("SELECT name, type FROM system.columns WHERE database = 'bench' AND table = 'vital_samples'")).map((c) => [c.name, c.type]))
const structure = cols.map((c) => `${c} ${types.get(c)!}`).join(', ')

const devices = Array.from({ length: bracelets }, (_, i) => ({
  tenant: `care-${i % tenants}`, patient: `p-${String(i).padStart(6, '0')}`, device: `brc-${String(i).padStart(6, '0')}`, model: createBraceletModel(1000 + i), seq: 0n,
}))
let rows = 0
let rowBinaryBytes = 0
let messages = 0
let encodeSeconds = 0
let insertSeconds = 0
// an hour of every bracelet per insert (the node inserts far more often; merges end at the same parts)
for (let h = 0; h < hours; h++) {
  const t0 = performance.now()
  const chunks: Buffer[] = []
  for (const d of devices) {
    for (let m = 0; m < 60; m++) {
      const start = T0 + (h * 60 + m) * MIN
      const batch = d.model.nextBatch(start)
      // arrives a few seconds after its window closes
      const e = vitalRows({ tenant: d.tenant, patient: d.patient, device: d.device, seq: ++d.seq, ingestedAt: start + MIN + 1500 + (m % 7) * 311, gate: () => GRANT }, batch)
      chunks.push(e.chunk)
      rowBinaryBytes += e.chunk.length
      rows += e.rows
      messages++
    }
  }
  const file = join(dir.path, `hour-${h}.bin`)
  writeFileSync(file, Buffer.concat(chunks))
  const t1 = performance.now()
  await conn.client.command({ query: `INSERT INTO bench.vital_samples (${cols.join(', ')}) SELECT * FROM file(${sqlString(file)}, RowBinary, ${sqlString(structure)})` })
  encodeSeconds += (t1 - t0) / 1000
  insertSeconds += (performance.now() - t1) / 1000
}
for (const t of ['vital_samples', 'device_sequences', 'device_heads']) await conn.client.command({ query: `OPTIMIZE TABLE bench.${t} FINAL` })

interface Parts { table: string; parts: string; rows: string; on_disk: string; compressed: string; uncompressed: string }
const parts = await q<Parts>(`SELECT table, count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS on_disk,
  sum(data_compressed_bytes) AS compressed, sum(data_uncompressed_bytes) AS uncompressed
  FROM system.parts WHERE database = 'bench' AND active AND table IN ('vital_samples', 'device_sequences', 'device_heads') GROUP BY table ORDER BY table`)
const columns = await q<{ name: string; compressed: string; uncompressed: string }>(`SELECT name, data_compressed_bytes AS compressed, data_uncompressed_bytes AS uncompressed
  FROM system.columns WHERE database = 'bench' AND table = 'vital_samples' ORDER BY data_compressed_bytes DESC`)
const per = (n: string | number, d: number): number => Math.round((Number(n) / d) * 100) / 100
const table = (name: string): Parts => parts.find((p) => p.table === name)!
const vs = table('vital_samples')
if (Number(vs.rows) !== rows) throw new Error(`stored ${vs.rows} rows, encoded ${rows}`)

process.stdout.write(JSON.stringify({
  benchmark: 'storage-footprint', machine: machine(), bracelets, hours, tenants, messages, rows,
  rowsPerBraceletDay: Math.round(rows / bracelets / (hours / 24)),
  // what the write-ahead log and the INSERT carry: the rows as RowBinary
  rowBinaryBytesPerRow: per(rowBinaryBytes, rows),
  vital_samples: {
    parts: Number(vs.parts),
    bytesOnDiskPerRow: per(vs.on_disk, rows), compressedPerRow: per(vs.compressed, rows), uncompressedPerRow: per(vs.uncompressed, rows),
    compressionRatio: per(vs.uncompressed, Number(vs.compressed)),
    columnsCompressedPerRow: Object.fromEntries(columns.map((c) => [c.name, per(c.compressed, rows)])),
  },
  // one row per message (replay marks, by materialized view), one per device once merged
  device_sequences: { rows: Number(table('device_sequences').rows), bytesOnDiskPerMessage: per(table('device_sequences').on_disk, messages) },
  device_heads: { rows: Number(table('device_heads').rows), bytesOnDisk: Number(table('device_heads').on_disk) },
  bytesOnDiskPerBraceletDay: Math.round((Number(vs.on_disk) + Number(table('device_sequences').on_disk)) / bracelets / (hours / 24)),
  seconds: { encode: Math.round(encodeSeconds * 10) / 10, insert: Math.round(insertSeconds * 10) / 10 },
}, null, 2) + '\n')
await conn.client.close()
dir.remove()
