/** The node's resident memory over a run, read from its /metrics every 5 s: a soak must show no upward trend. */
import type { AdminClient } from '../src/api/index.ts'
import type { FleetResult } from './fleet-types.ts'

export interface NodeMemory {
  /** Takes one sample now. */
  sample: () => Promise<void>
  stop: () => void
  trend: () => FleetResult['nodeRssMB']
}

export function watchNodeMemory (api: AdminClient | undefined, everyMs = 5000): NodeMemory {
  const rss: Array<[number, number]> = []
  const sample = async (): Promise<void> => {
    if (api === undefined) return
    const text = await api.metrics().catch(() => '')
    const m = /^vitalflow_process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text)
    if (m !== null) rss.push([Date.now(), Number(m[1]) / 1048576])
  }
  const timer = setInterval(() => { void sample() }, everyMs)
  return { sample, stop: () => { clearInterval(timer) }, trend: () => rssTrend(rss) }
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
