/**
 * What fsync'ing every inserted part costs embedded chDB, against making the parts durable with one
 * syncfs(2) per write-ahead-log checkpoint (src/storage/part-sync.ts). The same RowBinary batch
 * (1,400 bracelet samples, or 5 alarm-sized rows) goes through file() as the batcher sends it, into
 * two copies of vital_samples taking turns insert by insert, so machine and disk load fall on both:
 *   fsync per part: migration 9's settings (every inserted part and its directory fsync'd)
 *   syncfs:         inserted parts not fsync'd; `sync -f` on the data directory after every
 *                   `syncEvery` inserts, its wall time counted against the inserts it covers
 * With `--busy-disk` a second process writes 4 MiB and fdatasyncs it in a loop meanwhile, as merges
 * and the log do in a soak (a fsync then waits behind other writes in the journal).
 * Prints wall and CPU per insert, and how many inserts a second one connection can do at that wall.
 * Usage: npx tsx bench/part-fsync.bench.ts [inserts=150] [syncEvery=10] [--busy-disk]
 */
import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { closeConnection, connect } from '../src/storage/connection.ts'
import { migrate } from '../src/storage/migrate.ts'
import { sqlString } from '../src/sql.ts'
import { FileSystemSyncer } from '../src/storage/part-sync.ts'
import { tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const inserts = Number(args[0] ?? 150)
const syncEvery = Number(args[1] ?? 10)
const busyDisk = process.argv.includes('--busy-disk')
const run = promisify(execFile)

const dir = tempDir('vf-part-fsync-')
const conn = await connect({ dataDir: dir.path, database: 'vf' })
await migrate(conn)
const c = conn.client
const cmd = async (query: string): Promise<void> => { await c.command({ query }) }
const structure = (await (await c.query({
  query: "SELECT arrayStringConcat(groupArray(concat(name, ' ', type)), ', ') AS s FROM (SELECT name, type FROM system.columns WHERE database = 'vf' AND table = 'vital_samples' ORDER BY position)", format: 'JSONEachRow',
})).json<{ s: string }>())[0]!.s
const file = (rows: number): string => `${dir.path}/rows-${rows}.bin`
for (const rows of [1400, 5]) {
  await cmd(`INSERT INTO FUNCTION file(${sqlString(file(rows))}, RowBinary, ${sqlString(structure)}) SELECT 't1', concat('p-', toString(number % 20)), concat('brc-', toString(number % 20)),
    'heart_rate', 'vitals', toDateTime64('2026-11-01 00:00:00', 3) + number, 60 + number % 7, 0, 4, intDiv(number, 20), number % 70, 'care', 'consent', 1, now64(3) FROM numbers(${rows})`)
}

const writer = busyDisk
  ? spawn(process.execPath, ['-e', `const fs=require('fs');const b=Buffer.alloc(4<<20,7);const f=fs.openSync(${JSON.stringify(dir.path + '/busy.bin')},'w');for(;;){fs.writeSync(f,b,0,b.length,0);fs.fdatasyncSync(f)}`], { stdio: 'ignore' })
  : null

interface Case { wallMs: number; cpuMs: number; syncMs: number }
const SETUPS = {
  'fsync per part': 'fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1',
  syncfs: 'fsync_after_insert = 0, fsync_part_directory = 0, min_rows_to_fsync_after_merge = 1',
} as const
const names = Object.keys(SETUPS) as Array<keyof typeof SETUPS>
const perInsert: Record<string, Record<string, Case & { insertsPerSecond: number }>> = {}
let k = 0
for (const rows of [1400, 5]) {
  const tables = names.map(() => `vs${k++}`)
  for (let i = 0; i < names.length; i++) {
    await cmd(`CREATE TABLE vf.${tables[i]!} AS vf.vital_samples`)
    await cmd(`ALTER TABLE vf.${tables[i]!} MODIFY SETTING ${SETUPS[names[i]!]}, non_replicated_deduplication_window = 10000`)
  }
  const sum: Case[] = names.map(() => ({ wallMs: 0, cpuMs: 0, syncMs: 0 }))
  for (let n = 0; n < inserts; n++) {
    for (let i = 0; i < names.length; i++) {
      const u0 = process.cpuUsage()
      const t0 = performance.now()
      await c.command({ query: `INSERT INTO vf.${tables[i]!} SELECT * FROM file(${sqlString(file(rows))}, RowBinary, ${sqlString(structure)})`, clickhouse_settings: { insert_deduplication_token: `${tables[i]!}-${n}` } })
      const wall = performance.now() - t0
      const u = process.cpuUsage(u0)
      sum[i]!.wallMs += wall
      sum[i]!.cpuMs += (u.user + u.system) / 1000
      if (names[i] === 'syncfs' && (n + 1) % syncEvery === 0) {
        const s0 = performance.now()
        await run('sync', ['-f', dir.path])
        sum[i]!.syncMs += performance.now() - s0
      }
    }
  }
  const out: Record<string, Case & { insertsPerSecond: number }> = {}
  for (let i = 0; i < names.length; i++) {
    const s = sum[i]!
    // the sync runs beside the inserts in the product (before a checkpoint, off the insert connection); counted here as if it did not
    out[names[i]!] = { wallMs: round(s.wallMs / inserts), cpuMs: round(s.cpuMs / inserts), syncMs: round(s.syncMs / inserts), insertsPerSecond: Math.round(1000 / (s.wallMs / inserts)) }
  }
  perInsert[`${rows} rows`] = out
}
writer?.kill('SIGKILL')
await closeConnection(conn)

// what a sync costs the node's event loop: a process spawned per sync, from a process holding 1.5 GB
// (a node in a soak holds 1.7 GB), against a request to the one helper FileSystemSyncer starts
const held: Buffer[] = []
for (let i = 0; i < 1536; i++) held.push(Buffer.alloc(1 << 20, 1))
const spawnCost = async (label: string, once: () => Promise<void>): Promise<Record<string, number | string>> => {
  let blocked = 0
  let wall = 0
  const u0 = process.cpuUsage()
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now()
    const p = once()
    blocked += performance.now() - t0 // the synchronous part: fork happens here
    await p
    wall += performance.now() - t0
    for (const b of held) b[0]! += 1 // the process goes on writing its memory
  }
  const u = process.cpuUsage(u0)
  return { case: label, eventLoopBlockedMs: round(blocked / 20), wallMs: round(wall / 20), cpuMs: round((u.user + u.system) / 1000 / 20) }
}
const helper = new FileSystemSyncer(dir.path)
const syncCost = [
  await spawnCost('a process per sync', async () => { await run('sync', ['-f', dir.path]) }),
  await spawnCost('one helper (FileSystemSyncer)', () => helper.sync()),
]
helper.close()
const rssMB = Math.round(process.memoryUsage().rss / 1e6)
held.length = 0
dir.remove()

function round (x: number): number { return Math.round(x * 100) / 100 }
const wall = (rows: string, name: string): number => perInsert[rows]![name]!.wallMs
process.stdout.write(JSON.stringify({
  benchmark: 'part-fsync', machine: machine(), inserts, syncEvery, busyDisk, perInsert, syncCost: { rssMB, cases: syncCost },
  speedup: { '1400 rows': round(wall('1400 rows', 'fsync per part') / wall('1400 rows', 'syncfs')), '5 rows': round(wall('5 rows', 'fsync per part') / wall('5 rows', 'syncfs')) },
}, null, 2) + '\n')
