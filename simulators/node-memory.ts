/**
 * The node's resident memory over a run, read from its /metrics every 5 s: a
 * soak must show no upward trend. And where its CPU went: the difference of
 * its per-thread and per-step CPU counters between the first and the last
 * sample, per million rows it logged.
 */
import type { AdminClient } from '../src/api/index.ts'
import type { FleetResult } from './fleet-types.ts'

export interface NodeMemory {
  /** Takes one sample now. */
  sample: () => Promise<void>
  stop: () => void
  trend: () => FleetResult['nodeRssMB']
  cpu: () => FleetResult['nodeCpu']
}

type Totals = { thread: Record<string, number>; stage: Record<string, number>; rows: number }

/** Sums of a labelled counter by label value, from Prometheus text. */
function byLabel (text: string, metric: string, label: string): Record<string, number> {
  const out: Record<string, number> = {}
  const re = new RegExp(`^${metric}\\{${label}="([^"]*)"\\} (\\S+)$`, 'gm')
  for (const m of text.matchAll(re)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2])
  return out
}

// every 15 s, as a Prometheus would: a /metrics scrape holds the node's event loop for tens to hundreds of
// milliseconds at 10,000 connections (bench/RESULTS.md, the CPU profile), and every worker samples
export function watchNodeMemory (api: AdminClient | undefined, everyMs = 15_000): NodeMemory {
  const rss: Array<[number, number]> = []
  let first: Totals | null = null
  let last: Totals | null = null
  const sample = async (): Promise<void> => {
    if (api === undefined) return
    const text = await api.metrics().catch(() => '')
    const m = /^vitalflow_process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text)
    if (m !== null) rss.push([Date.now(), Number(m[1]) / 1048576])
    const thread = byLabel(text, 'vitalflow_thread_cpu_seconds_total', 'thread')
    if (Object.keys(thread).length === 0) return
    const rows = Object.values(byLabel(text, 'vitalflow_rows_logged_total', 'table')).reduce((a, b) => a + b, 0)
    last = { thread, stage: byLabel(text, 'vitalflow_stage_seconds_total', 'stage'), rows }
    first ??= last
  }
  const timer = setInterval(() => { void sample() }, everyMs)
  return { sample, stop: () => { clearInterval(timer) }, trend: () => rssTrend(rss), cpu: () => cpuOver(first, last) }
}

function cpuOver (a: Totals | null, b: Totals | null): FleetResult['nodeCpu'] {
  if (a === null || b === null || a === b) return null
  const r = (v: number): number => Math.round(v * 10) / 10
  const diff = (x: Record<string, number>, y: Record<string, number>): Record<string, number> => {
    const out: Record<string, number> = {}
    let other = 0
    // a thread that started during the run counts from 0; small ones are summed as `other`
    for (const [k, v] of Object.entries(y)) { const d = v - (x[k] ?? 0); if (d >= 1) out[k] = r(d); else other += Math.max(0, d) }
    if (other > 0) out['other'] = r(other)
    return Object.fromEntries(Object.entries(out).sort(([, p], [, q]) => q - p))
  }
  const byThread = diff(a.thread, b.thread)
  const seconds = Object.values(byThread).reduce((s, v) => s + v, 0)
  const rows = b.rows - a.rows
  return { seconds: r(seconds), byThread, byStage: diff(a.stage, b.stage), rowsLogged: rows, cpuSecondsPerMillionRows: rows > 0 ? r(seconds / rows * 1e6) : null }
}

function rssTrend (xs: Array<[number, number]>): FleetResult['nodeRssMB'] {
  if (xs.length === 0) return null
  const n = xs.length
  const r = (v: number): number => Math.round(v * 10) / 10
  const byMinute: number[] = []
  for (const [t, v] of xs) if (t - xs[0]![0] >= byMinute.length * 60_000) byMinute.push(r(v))
  return {
    first: r(xs[0]![1]), max: r(Math.max(...xs.map(([, v]) => v))), last: r(xs[n - 1]![1]),
    mbPerMinute: r(slope(xs) * 60_000), secondHalfMbPerMinute: r(slope(xs.slice(Math.floor(n / 2))) * 60_000), byMinute, samples: n,
  }
}

/** Least-squares slope of v over t. */
function slope (xs: Array<[number, number]>): number {
  const n = xs.length
  if (n < 2) return 0
  const mx = xs.reduce((a, [t]) => a + t, 0) / n
  const my = xs.reduce((a, [, v]) => a + v, 0) / n
  const sxx = xs.reduce((a, [t]) => a + (t - mx) ** 2, 0)
  return sxx === 0 ? 0 : xs.reduce((a, [t, v]) => a + (t - mx) * (v - my), 0) / sxx
}
