/**
 * CPU seconds per thread of this process, grouped by thread name, read from
 * /proc/self/task/{tid}/stat (Linux; empty elsewhere). The main thread is
 * `main`; ClickHouse's threads keep their names (`ThreadPool` for inserts and
 * queries, `MergeMutate` for merges, `BgSchPool` …), Node's helpers theirs.
 * Threads that ended are gone from /proc: the soak report takes differences
 * of these totals between samples, so a short-lived thread's time is missed.
 * libuv's pool threads are named `libuv-pool` at start (nameThreadPool):
 * they would be `node` like V8's platform workers, yet they are where chDB
 * runs its statements and where the log's file writes go.
 */
import { pbkdf2 } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { readlink, writeFile } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'

/** Clock ticks per second: 100 on every Linux Node runs on (USER_HZ). */
const TICKS = 100

/** The name nameThreadPool gives libuv's pool threads (at most 15 bytes: the kernel's limit). */
export const POOL_THREAD_NAME = 'libuv-pool'

/**
 * Names the threads of libuv's pool `libuv-pool` (Linux), so that per-thread CPU tells them from V8's
 * platform workers, which are also `node`. chDB runs each statement from the pool (`Napi::AsyncWorker`,
 * `QueryAsyncWorker` in its binding): under load most of the pool's time is ClickHouse's inserts. A pool
 * thread is found by having it resolve `/proc/thread-self` (readlink runs in the pool): rounds of
 * concurrent requests until `UV_THREADPOOL_SIZE` threads (default 4) answered, or twenty rounds. Returns the
 * thread ids named, once per process. Never throws: a name is a label, not a function of the node.
 */
export async function nameThreadPool (): Promise<string[]> {
  // the pool is the process's: named once, however many nodes a process starts (tests, benches)
  poolNamed ??= findAndNamePool()
  return await poolNamed
}

let poolNamed: Promise<string[]> | null = null

async function findAndNamePool (): Promise<string[]> {
  if (process.platform !== 'linux') return []
  const size = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4)
  const want = Number.isInteger(size) && size > 0 ? Math.min(size, 1024) : 4
  const found = new Set<string>()
  for (let round = 0; round < 20 && found.size < want; round++) {
    // each readlink behind a short busy task (a ~1 ms pbkdf2, also run in the pool): a thread that took
    // one is busy while the next readlink waits, so the others must answer too. Readlinks alone are so
    // quick that one awake thread could drain a round on a loaded machine (3 of 4 found, once, in CI).
    const links = await Promise.allSettled(Array.from({ length: want * 4 }, async () => {
      await new Promise((resolve) => { pbkdf2('', '', 2_000, 32, 'sha256', resolve) })
      return await readlink('/proc/thread-self')
    }))
    for (const l of links) if (l.status === 'fulfilled') found.add(l.value.slice(l.value.lastIndexOf('/') + 1))
  }
  const named: string[] = []
  for (const tid of found) {
    try {
      await writeFile(`/proc/self/task/${tid}/comm`, POOL_THREAD_NAME)
      named.push(tid)
    } catch { /* a kernel without writable comm: the thread keeps its name */ }
  }
  return named
}

/** Of this process, or of another one by pid (scripts/thread-cpu.ts). */
export function threadCpuSeconds (pid: number = process.pid): Record<string, number> {
  let tids: string[]
  try { tids = readdirSync(`/proc/${pid}/task`) } catch { return {} }
  return tally(pid, tids.map((tid) => {
    try { return [tid, readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1')] as const } catch { return [tid, null] as const }
  }))
}

/**
 * Reads every thread's stat file synchronously, in a worker thread of its own: what /metrics uses.
 * Reading a thread's stat takes the kernel's lock of the process's memory map, which ClickHouse's
 * allocations hold often: read on the event loop, the 60 stat files of a loaded node took up to 120 ms
 * (a soak's CPU profile). Read with fs.promises in libuv's pool instead (open, fstat, read, close and a
 * 64 KiB buffer per file, for ~150 threads), a scrape still kept the event loop busy for 120–260 ms at
 * speed 12 and put hundreds of requests in the four-thread pool ahead of the write-ahead log's writes,
 * whose completions send the PUBACKs (a speed-12 soak's CPU profile, bench/RESULTS.md).
 */
const READER = `
const { parentPort } = require('node:worker_threads')
const { readdirSync, readFileSync } = require('node:fs')
parentPort.on('message', ({ id, pid }) => {
  let stats = []
  try {
    stats = readdirSync('/proc/' + pid + '/task').map((tid) => {
      try { return [tid, readFileSync('/proc/' + pid + '/task/' + tid + '/stat', 'latin1')] } catch { return [tid, null] }
    })
  } catch {}
  parentPort.postMessage({ id, stats })
})
`

let reader: { worker: Worker; waiting: Map<number, (stats: Array<[string, string | null]>) => void>; next: number } | null = null

function readStats (pid: number): Promise<Array<[string, string | null]>> {
  if (reader === null) {
    const worker = new Worker(READER, { eval: true })
    const waiting = new Map<number, (stats: Array<[string, string | null]>) => void>()
    worker.on('message', (m: { id: number; stats: Array<[string, string | null]> }) => {
      waiting.get(m.id)?.(m.stats)
      waiting.delete(m.id)
    })
    // a reader that fails answers nothing more: what waits gets no threads, the next read a new reader
    const fail = (): void => { for (const done of waiting.values()) done([]); waiting.clear(); reader = null }
    worker.on('error', fail)
    worker.on('exit', fail)
    worker.unref() // never what keeps a process running
    reader = { worker, waiting, next: 0 }
  }
  const r = reader
  const id = ++r.next
  return new Promise((resolve) => {
    r.waiting.set(id, resolve)
    r.worker.postMessage({ id, pid })
  })
}

export async function threadCpuSecondsAsync (pid: number = process.pid): Promise<Record<string, number>> {
  if (process.platform !== 'linux') return {}
  return tally(pid, await readStats(pid))
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
