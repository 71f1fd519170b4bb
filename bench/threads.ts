/**
 * CPU seconds per thread group of this process, from /proc/self/task/<tid>/stat (Linux only).
 * Threads are grouped by name: the main thread as `main`, the rest by the name the runtime gave
 * them (`node` for libuv's pool and V8's helpers, ClickHouse's `ThreadPool`, `MergeMutate`,
 * `BgSchPool`, ...). Threads that exit between two samples keep the time of their last sample;
 * what they used after it shows up only in the process total (`exited`).
 */
import { readdirSync, readFileSync } from 'node:fs'

const TICK = 100 // USER_HZ on Linux

function stat (path: string): { name: string; ticks: number } | null {
  try {
    const s = readFileSync(path, 'utf8')
    const close = s.lastIndexOf(')')
    const f = s.slice(close + 2).split(' ')
    // fields 14 and 15 (utime, stime) are the 12th and 13th after the name
    return { name: s.slice(s.indexOf('(') + 1, close), ticks: Number(f[11]) + Number(f[12]) }
  } catch { return null }
}

export class ThreadCpu {
  private readonly start = new Map<string, number>()
  private readonly last = new Map<string, { name: string; ticks: number }>()
  private readonly processStart: number
  private timer: NodeJS.Timeout | null = null

  constructor (sampleMs = 500) {
    for (const [tid, s] of this.read()) this.start.set(tid, s.ticks)
    this.processStart = stat('/proc/self/stat')?.ticks ?? 0
    this.timer = setInterval(() => { this.sample() }, sampleMs)
    this.timer.unref()
  }

  private read (): Map<string, { name: string; ticks: number }> {
    const out = new Map<string, { name: string; ticks: number }>()
    for (const tid of readdirSync('/proc/self/task')) {
      const s = stat(`/proc/self/task/${tid}/stat`)
      if (s !== null) out.set(tid, { name: tid === String(process.pid) ? 'main' : s.name, ticks: s.ticks })
    }
    return out
  }

  private sample (): void { for (const [tid, s] of this.read()) this.last.set(tid, s) }

  /** CPU seconds per thread group since construction, the process total, and the part of it no live sample saw. */
  stop (): { groups: Record<string, number>; total: number; exited: number } {
    if (this.timer !== null) clearInterval(this.timer)
    this.sample()
    const groups: Record<string, number> = {}
    let seen = 0
    for (const [tid, s] of this.last) {
      const d = (s.ticks - (this.start.get(tid) ?? 0)) / TICK
      if (d <= 0) continue
      groups[s.name] = (groups[s.name] ?? 0) + d
      seen += d
    }
    const total = ((stat('/proc/self/stat')?.ticks ?? 0) - this.processStart) / TICK
    const round = (x: number): number => Math.round(x * 100) / 100
    return {
      groups: Object.fromEntries(Object.entries(groups).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, round(v)])),
      total: round(total),
      exited: round(Math.max(0, total - seen)),
    }
  }
}
