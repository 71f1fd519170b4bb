/**
 * CPU seconds per thread of this process, grouped by thread name, read from
 * /proc/self/task/{tid}/stat (Linux; empty elsewhere). The main thread is
 * `main`; ClickHouse's threads keep their names (`ThreadPool` for inserts and
 * queries, `MergeMutate` for merges, `BgSchPool` …), Node's helpers theirs.
 * Threads that ended are gone from /proc: the soak report takes differences
 * of these totals between samples, so a short-lived thread's time is missed.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'

/** Clock ticks per second: 100 on every Linux Node runs on (USER_HZ). */
const TICKS = 100

/** Of this process, or of another one by pid (scripts/thread-cpu.ts). */
export function threadCpuSeconds (pid: number = process.pid): Record<string, number> {
  let tids: string[]
  try { tids = readdirSync(`/proc/${pid}/task`) } catch { return {} }
  return tally(pid, tids.map((tid) => {
    try { return [tid, readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1')] as const } catch { return [tid, null] as const }
  }))
}

/**
 * The same, read in libuv's thread pool: what /metrics uses. Reading a thread's stat takes the
 * kernel's lock of the process's memory map, which ClickHouse's allocations hold often: read on
 * the event loop, the 60 stat files of a loaded node took up to 120 ms (a soak's CPU profile).
 */
export async function threadCpuSecondsAsync (pid: number = process.pid): Promise<Record<string, number>> {
  let tids: string[]
  try { tids = await readdir(`/proc/${pid}/task`) } catch { return {} }
  return tally(pid, await Promise.all(tids.map(async (tid) => [tid, await readFile(`/proc/${pid}/task/${tid}/stat`, 'latin1').catch(() => null)] as const)))
}

function tally (pid: number, stats: ReadonlyArray<readonly [string, string | null]>): Record<string, number> {
  const out: Record<string, number> = {}
  const self = String(pid)
  for (const [tid, stat] of stats) {
    if (stat === null) continue
    // pid (comm) state …: comm may hold spaces and parentheses, so split at the last ')'
    const open = stat.indexOf('(')
    const close = stat.lastIndexOf(')')
    if (open < 0 || close < open) continue
    const fields = stat.slice(close + 2).split(' ')
    // fields[0] is state (field 3): utime and stime are fields 14 and 15
    const ticks = Number(fields[11]) + Number(fields[12])
    const name = tid === self ? 'main' : stat.slice(open + 1, close).replace(/[\s:#-]*\d+$/, '')
    out[name] = (out[name] ?? 0) + ticks / TICKS
  }
  return out
}
