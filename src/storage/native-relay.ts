/**
 * Re-lays a batch's RowBinary rows as Native (native.ts) and writes the spool file embedded chDB reads
 * them from, on a worker thread of its own: the block of a sample batch (tens of thousands of rows,
 * ~0.5 µs a row) must not hold the event loop that relays alarms. One batch at a time per table's
 * batcher is in flight, so one thread serves them in turn. The rows are copied to the worker (a batch
 * that fails is retried from the same bytes), the block never comes back.
 *
 * The worker is plain JavaScript passed as a string (`eval: true`), as in src/registry/hasher.ts: it
 * loads the same under tsx and plain node 20-24. A worker that dies fails its job (the batcher retries
 * it) and is replaced by the next one.
 */
import { Worker } from 'node:worker_threads'
import { relayRows, stringEnd } from './native.ts'

export interface NativeRelayStats {
  /** Batches and rows written as Native. */
  batches: number
  rows: number
  /** Thread ids of the workers that wrote them (never the main thread's). */
  threads: number[]
}

export interface NativeRelay {
  /** Writes `rows` (RowBinary, columns as `layout`) to `file` as one Native block. */
  write: (file: string, rows: Uint8Array, layout: readonly number[], names: readonly string[], sentAs: readonly string[]) => Promise<void>
  stats: () => NativeRelayStats
  close: () => Promise<void>
}

/** The relay worker's thread name (Linux), in the per-thread CPU table. */
export const RELAY_THREAD_NAME = 'native-relay'

const WORKER_SOURCE = `
const { parentPort, threadId } = require('node:worker_threads')
const { writeFileSync } = require('node:fs')
${stringEnd.toString()}
const relayRows = ${relayRows.toString()}
// per-thread CPU (/metrics, the soak report) tells this thread from V8's and other workers, all \`node\`
try { writeFileSync('/proc/thread-self/comm', '${RELAY_THREAD_NAME}') } catch {}
parentPort.on('message', (m) => {
  try {
    const { block, rows } = relayRows(m.rows, m.layout, m.names, m.sentAs)
    writeFileSync(m.file, block)
    parentPort.postMessage({ id: m.id, rows, threadId })
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e), threadId })
  }
})
`

interface Job { resolve: () => void; reject: (e: Error) => void }

export function createNativeRelay (): NativeRelay {
  let worker: Worker | null = null
  const jobs = new Map<number, Job>()
  const threads = new Set<number>()
  let next = 0
  let batches = 0
  let rowsWritten = 0
  let closed = false

  function spawn (): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false })
    w.unref()
    w.on('message', (m: { id: number; rows?: number; error?: string; threadId: number }) => {
      const job = jobs.get(m.id)
      if (job === undefined) return
      jobs.delete(m.id)
      if (jobs.size === 0) w.unref()
      threads.add(m.threadId)
      if (m.error !== undefined) { job.reject(new Error(`native relay failed: ${m.error}`)); return }
      batches++
      rowsWritten += m.rows ?? 0
      job.resolve()
    })
    const lost = (err: Error): void => {
      if (worker === w) worker = null
      for (const job of jobs.values()) job.reject(err)
      jobs.clear()
    }
    w.on('error', lost)
    w.on('exit', (code) => { lost(new Error(`native relay worker exited (${code})`)) })
    return w
  }

  return {
    write: (file, rows, layout, names, sentAs) => {
      if (closed) return Promise.reject(new Error('the native relay is closed'))
      const w = worker ??= spawn()
      const id = ++next
      return new Promise<void>((resolve, reject) => {
        jobs.set(id, { resolve, reject })
        // a busy worker keeps the process alive until its answer is in
        w.ref()
        w.postMessage({ id, file, rows, layout, names, sentAs })
      })
    },
    stats: () => ({ batches, rows: rowsWritten, threads: [...threads] }),
    close: async () => {
      closed = true
      const w = worker
      worker = null
      if (w !== null) await w.terminate()
    },
  }
}
