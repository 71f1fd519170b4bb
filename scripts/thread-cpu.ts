/**
 * Where a process's CPU goes, per thread: `npx tsx scripts/thread-cpu.ts <pid> [seconds]`
 * samples /proc/<pid>/task at the start and the end of the interval (or until
 * the process exits, or Ctrl-C) and prints CPU seconds per thread group as
 * JSON, biggest first: `main` (TLS, MQTT, the ingest path), `libuv-pool` (chDB's
 * statements and the log's file writes, named so by the node at start), ClickHouse's
 * `ThreadPool` (inserts, queries) and `MergeMutate` (merges), `node` (V8's platform workers:
 * garbage-collection helpers, the optimising compiler).
 * Works on any vitalflow node (old ones have no per-thread /metrics) and is
 * what the fleet soak figures in bench/RESULTS.md are read with.
 */
import { threadCpuSeconds } from '../src/api/thread-cpu.ts'

const pid = Number(process.argv[2])
const seconds = Number(process.argv[3] ?? 'Infinity')
if (!Number.isInteger(pid) || pid <= 0) {
  process.stderr.write('usage: tsx scripts/thread-cpu.ts <pid> [seconds]\n')
  process.exit(2)
}
const first = threadCpuSeconds(pid)
const started = Date.now()
let last = first
let done = false
const report = (): void => {
  if (done) return
  done = true
  const byThread: Record<string, number> = {}
  let other = 0
  for (const [k, v] of Object.entries(last)) {
    const d = v - (first[k] ?? 0)
    if (d >= 1) byThread[k] = Math.round(d * 10) / 10
    else other += Math.max(0, d)
  }
  if (other > 0) byThread['other'] = Math.round(other * 10) / 10
  const sorted = Object.fromEntries(Object.entries(byThread).sort(([, a], [, b]) => b - a))
  const total = Object.values(sorted).reduce((a, b) => a + b, 0)
  process.stdout.write(JSON.stringify({ pid, seconds: Math.round((Date.now() - started) / 100) / 10, cpuSeconds: Math.round(total * 10) / 10, byThread: sorted }, null, 2) + '\n')
  process.exit(0)
}
process.on('SIGINT', report)
process.on('SIGTERM', report)
const timer = setInterval(() => {
  const now = threadCpuSeconds(pid)
  // the process ended: report up to its last sample
  if (Object.keys(now).length === 0) { clearInterval(timer); report(); return }
  last = now
  if (Date.now() - started >= seconds * 1000) { clearInterval(timer); report() }
}, 1000)
