/** Latency percentiles for the simulator's report and the benchmarks' JSON. */
export interface Percentiles { p50: number; p99: number; max: number; n: number }

/** Nearest-rank p50, p99 and max of the samples, rounded to `decimals`; all 0 when there are none. */
export function percentiles (xs: readonly number[], decimals = 1): Percentiles {
  const s = [...xs].sort((a, b) => a - b)
  const scale = 10 ** decimals
  const at = (q: number): number => s.length === 0 ? 0 : Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * scale) / scale
  return { p50: at(0.5), p99: at(0.99), max: at(1), n: s.length }
}
