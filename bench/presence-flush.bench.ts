/**
 * What a presence flush (registry/presence.ts: last seen, battery, firmware per device, written every
 * five seconds) holds the event loop for, at fleet sizes: the rows encoded as JSONEachRow by the
 * ClickHouse client (the earlier code, the baseline) against RowBinary (`Storage.insertPresence`), into
 * the same embedded chDB table, back to back. Reported: the synchronous part of the call, the main
 * thread's CPU over the whole insert (its schedstat: the client encodes JSON after its first await too,
 * and chDB's own threads are not counted), and the whole insert's time.
 * Usage: npx tsx bench/presence-flush.bench.ts [devices=10000] [rounds=20]
 */
import { readFileSync } from 'node:fs'
import { presenceRows, type Presence } from '../src/registry/index.ts'
import { createStorage } from '../src/storage/index.ts'
import { tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const devices = Number(process.argv[2] ?? 10_000)
const rounds = Number(process.argv[3] ?? 20)

const dir = tempDir('vf-presence-bench-')
const storage = await createStorage({ dataDir: dir.path, database: 'presence', batch: { maxRows: 100_000, maxAgeMs: 200 }, wal: { segmentBytes: 1 << 24, budgetBytes: 1 << 30 } })
const { client, table } = storage.conn

const fleet = new Map<string, Presence>()
const t0 = Date.now()
for (let i = 0; i < devices; i++) {
  fleet.set(`bracelet-${String(i).padStart(6, '0')}`, {
    tenant: `care-${i % 5}`, lastSeenMs: t0 - i, batteryPercent: i % 3 === 0 ? null : i % 100, firmware: i % 3 === 0 ? null : '2.4.1',
    statusAtMs: i % 3 === 0 ? null : t0 - 1000, certNotAfterMs: t0 + 86_400_000 * 365,
  })
}

/** The earlier flush: row objects, then the client's JSONEachRow insert. */
function json (now: number): Promise<unknown> {
  const rows = []
  for (const [device, p] of fleet) {
    rows.push({
      tenant_id: p.tenant, device_id: device, last_seen: p.lastSeenMs, battery: p.batteryPercent, firmware: p.firmware ?? '',
      status_at: p.statusAtMs, cert_not_after: p.certNotAfterMs, updated_at: now,
    })
  }
  return client.insert({ table: table('device_presence'), values: rows, format: 'JSONEachRow' })
}

/** Today's: RowBinary, as presence.ts writes it. */
function rowBinary (now: number): Promise<unknown> {
  return storage.insertPresence(presenceRows([...fleet], now))
}

const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 100) / 100 }
type Stat = { p50: number; max: number }
const result: Record<string, { syncMs: Stat; mainThreadMs: Stat; insertMs: Stat }> = {}
const timings: Record<string, { sync: number[]; held: number[]; total: number[] }> = { json: { sync: [], held: [], total: [] }, rowBinary: { sync: [], held: [], total: [] } }
/** This process's main thread's time on a CPU, ms (the kernel's schedstat, in ns). */
const mainCpuMs = (): number => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6
for (let r = 0; r < rounds; r++) {
  // alternating, so drift of the machine falls on both
  for (const [name, f] of [['json', json], ['rowBinary', rowBinary]] as const) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const cpu0 = mainCpuMs()
    const start = performance.now()
    const p = f(Date.now())
    const sync = performance.now() - start
    await p
    timings[name]!.held.push(mainCpuMs() - cpu0)
    timings[name]!.sync.push(sync)
    timings[name]!.total.push(performance.now() - start)
  }
}
for (const [name, t] of Object.entries(timings)) {
  // the first rounds warm the code up
  const stat = (xs: number[]): Stat => ({ p50: pct(xs.slice(2), 0.5), max: pct(xs.slice(2), 1) })
  result[name] = { syncMs: stat(t.sync), mainThreadMs: stat(t.held), insertMs: stat(t.total) }
}
// both wrote the same rows: the table holds one row per device, the same either way
const stored = await (await client.query({ query: `SELECT count() AS n, uniqExact(device_id) AS d FROM ${table('device_presence')} FINAL`, format: 'JSONEachRow' })).json<{ n: string; d: string }>()
await storage.close()
dir.remove()
console.log(JSON.stringify({
  bench: 'presence-flush', machine: machine(), devices, rounds,
  baseline: { name: 'JSONEachRow (earlier code)', ...result['json'] },
  rowBinary: result['rowBinary'],
  syncRatio: Math.round(result['json']!.syncMs.p50 / result['rowBinary']!.syncMs.p50 * 10) / 10,
  mainThreadRatio: Math.round(result['json']!.mainThreadMs.p50 / result['rowBinary']!.mainThreadMs.p50 * 10) / 10,
  storedRows: Number(stored[0]!.n), storedDevices: Number(stored[0]!.d),
}, null, 2))
