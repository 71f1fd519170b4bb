/** Shared timing for benchmarks: warm up, then run a case for a fixed time and report ops/s. */
export interface Measurement { name: string; ops: number; seconds: number; opsPerSec: number }

export function measure (name: string, fn: () => unknown, opts: { seconds?: number; warmupSeconds?: number } = {}): Measurement {
  const run = (seconds: number): { ops: number; elapsed: number } => {
    const budget = BigInt(Math.round(seconds * 1e9))
    const start = process.hrtime.bigint()
    let ops = 0
    let elapsed = 0n
    while (elapsed < budget) {
      for (let i = 0; i < 64; i++) fn()
      ops += 64
      elapsed = process.hrtime.bigint() - start
    }
    return { ops, elapsed: Number(elapsed) / 1e9 }
  }
  run(opts.warmupSeconds ?? 0.3)
  const { ops, elapsed } = run(opts.seconds ?? 1.5)
  return { name, ops, seconds: Math.round(elapsed * 1000) / 1000, opsPerSec: Math.round(ops / elapsed) }
}

export function ratio (a: Measurement, b: Measurement): number {
  return Math.round((a.opsPerSec / b.opsPerSec) * 100) / 100
}

export function machine (): Record<string, unknown> {
  return { node: process.version, platform: `${process.platform}-${process.arch}`, date: new Date().toISOString() }
}
