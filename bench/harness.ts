/** Shared timing for benchmarks: warm up, then run a case for a fixed time and report ops/s. */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** The V8 flags `npm start` gives the node (package.json's start script, what the Docker image runs too). */
function shippedNodeFlags (): string[] {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }
  return pkg.scripts.start.split(/\s+/).filter((a) => a.startsWith('--'))
}

/**
 * A bench that starts the node in its own process calls this first: run without the flags the node
 * ships with (`npx tsx bench/….ts`), it runs itself again with them and exits with that run's status,
 * so what it measures is the node as `npm start` runs it, its baselines in the same process alike.
 */
export function asShipped (): void {
  const missing = shippedNodeFlags().filter((f) => !process.execArgv.includes(f))
  if (missing.length === 0) return
  const run = spawnSync(process.execPath, [...process.execArgv, ...missing, ...process.argv.slice(1)], { stdio: 'inherit' })
  process.exit(run.status ?? 1)
}
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
  return { node: process.version, platform: `${process.platform}-${process.arch}`, nodeFlags: process.execArgv.filter((a) => a.startsWith('--max')), date: new Date().toISOString() }
}
