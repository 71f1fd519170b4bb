/**
 * CPU seconds per thread of this process, grouped by thread name, read from
 * /proc/self/task/{tid}/stat (Linux; empty elsewhere). The main thread is
 * `main`; ClickHouse's threads keep their names (`ThreadPool` for inserts and
 * queries, `MergeMutate` for merges, `BgSchPool` …), Node's helpers theirs.
 * Threads that ended are gone from /proc: the soak report takes differences
 * of these totals between samples, so a short-lived thread's time is missed.
 */
import { readdirSync, readFileSync } from 'node:fs'

/** Clock ticks per second: 100 on every Linux Node runs on (USER_HZ). */
const TICKS = 100

/** Of this process, or of another one by pid (scripts/thread-cpu.ts). */
export function threadCpuSeconds (pid: number = process.pid): Record<string, number> {
  const out: Record<string, number> = {}
  let tids: string[]
  try { tids = readdirSync(`/proc/${pid}/task`) } catch { return out }
  const self = String(pid)
  for (const tid of tids) {
    let stat: string
    try { stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1') } catch { continue }
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
