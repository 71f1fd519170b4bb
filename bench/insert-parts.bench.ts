/**
 * What one insert costs embedded chDB, by what it writes: the same 5-row RowBinary batch of bracelet
 * samples through file() (as the batcher sends it) into a Memory table, into a MergeTree table with no
 * view, and into a copy of vital_samples carrying the heads view migration 14 put on every telemetry
 * table (a second part per insert, in device_heads); with a bare SELECT 1 and a read of the file as
 * the floor. Cases take turns insert by insert. Prints wall and process CPU (all threads) per statement.
 * Parts are not fsync'd here (as the logged tables' are not: src/storage/part-sync.ts).
 * Usage: npx tsx bench/insert-parts.bench.ts [rounds=60]
 */
import { closeConnection, connect } from '../src/storage/connection.ts'
import { migrate } from '../src/storage/migrate.ts'
import { sqlString } from '../src/sql.ts'
import { RETIRED_VIEWS } from '../src/storage/sequences.ts'
import { tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const N = Number(process.argv[2] ?? 60)
const dir = tempDir('vf-ins-probe-')
const conn = await connect({ dataDir: dir.path, database: 'vf' })
await migrate(conn)
const c = conn.client
const cmd = async (query: string, settings: Record<string, unknown> = {}): Promise<void> => { await c.command({ query, clickhouse_settings: settings as never }) }
await cmd('ALTER TABLE vf.vital_samples MODIFY SETTING fsync_after_insert = 0, fsync_part_directory = 0')
// the store as the node ran it before: the views of migrations 3 and 10 retired, migration 14's heads view on
// vital_samples kept (the node now retires that one too and writes the heads itself, a part a second)
for (const v of RETIRED_VIEWS.filter((name) => name !== 'vital_samples_heads')) await cmd(`DROP VIEW IF EXISTS vf.${v}`)
const structure = (await (await c.query({
  query: "SELECT arrayStringConcat(groupArray(concat(name, ' ', type)), ', ') AS s FROM (SELECT name, type FROM system.columns WHERE database = 'vf' AND table = 'vital_samples' ORDER BY position)", format: 'JSONEachRow',
})).json<{ s: string }>())[0]!.s
const f = `${dir.path}/rows.bin`
await cmd(`INSERT INTO FUNCTION file(${sqlString(f)}, RowBinary, ${sqlString(structure)}) SELECT 't1', concat('p-', toString(number % 20)), concat('brc-', toString(number % 20)),
    'heart_rate', 'vitals', toDateTime64('2026-11-01 00:00:00', 3) + number, 60 + number % 7, 0, 4, intDiv(number, 20), number % 70, 'care', 'consent', 1, now64(3) FROM numbers(5)`)
await cmd('CREATE TABLE vf.plain AS vf.vital_samples')
await cmd('ALTER TABLE vf.plain MODIFY SETTING fsync_after_insert = 0, fsync_part_directory = 0')
await cmd('CREATE TABLE vf.mem AS vf.vital_samples ENGINE = Memory')
const cases: Record<string, () => Promise<void>> = {
  'SELECT 1': async () => { await cmd('SELECT 1') },
  'read file()': async () => { await cmd(`SELECT count() FROM file(${sqlString(f)}, RowBinary, ${sqlString(structure)})`) },
  'into Memory': async () => { await cmd(`INSERT INTO vf.mem SELECT * FROM file(${sqlString(f)}, RowBinary, ${sqlString(structure)})`) },
  'into MergeTree, no view': async () => { await cmd(`INSERT INTO vf.plain SELECT * FROM file(${sqlString(f)}, RowBinary, ${sqlString(structure)})`) },
  'into vital_samples (+heads view)': async () => { await cmd(`INSERT INTO vf.vital_samples SELECT * FROM file(${sqlString(f)}, RowBinary, ${sqlString(structure)})`) },
}
const acc: Record<string, { wallMs: number; cpuMs: number }> = {}
for (const k of Object.keys(cases)) acc[k] = { wallMs: 0, cpuMs: 0 }
for (let n = 0; n < N; n++) {
  for (const [k, fn] of Object.entries(cases)) {
    const u0 = process.cpuUsage(); const t0 = performance.now()
    await fn()
    const u = process.cpuUsage(u0)
    acc[k]!.wallMs += performance.now() - t0; acc[k]!.cpuMs += (u.user + u.system) / 1000
  }
}
for (const a of Object.values(acc)) { a.wallMs = Math.round(a.wallMs / N * 100) / 100; a.cpuMs = Math.round(a.cpuMs / N * 100) / 100 }
const view = acc['into vital_samples (+heads view)']!
const plain = acc['into MergeTree, no view']!
process.stdout.write(JSON.stringify({
  benchmark: 'insert-parts', machine: machine(), rounds: N, rows: 5, perStatement: acc,
  viewCpuMsPerInsert: Math.round((view.cpuMs - plain.cpuMs) * 100) / 100,
}, null, 2) + '\n')
await closeConnection(conn)
dir.remove()
