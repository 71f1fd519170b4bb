/**
 * Slow hashes (scrypt) on a small pool of worker threads, off libuv's thread
 * pool. Async `crypto.scrypt` runs on libuv's pool (4 threads), which the
 * write-ahead log's O_DSYNC writes share: a login storm there delays every
 * PUBACK. A worker's `scryptSync` runs on the worker's own thread instead, and
 * the pool bounds how many run at once (`threads`) and how many may wait
 * (`maxQueue`); a bounded job that finds the queue full is refused at once
 * with HasherBusyError rather than queued without end.
 *
 * The worker is plain JavaScript passed as a string (`eval: true`) that needs
 * only node built-ins, so it loads the same under tsx and plain node 20-24.
 */
import { Worker } from 'node:worker_threads'
import { VitalflowError } from '../errors.ts'

export class HasherBusyError extends VitalflowError<'ING_ERR_AUTH_BUSY'> {
  constructor (message = 'password checks are saturated; retry shortly') {
    super('ING_ERR_AUTH_BUSY', message)
  }
}

export class HasherClosedError extends VitalflowError<'ING_ERR_AUTH_CLOSED'> {
  constructor () {
    super('ING_ERR_AUTH_CLOSED', 'the hasher is closed')
  }
}

export interface HasherOptions {
  /** Worker threads, i.e. hashes computed at once. */
  threads: number
  /** Bounded jobs that may wait for a thread; one more is refused. */
  maxQueue: number
}

export interface ScryptParams { N: number; r: number; p: number; keylen: number }

export interface HasherStats {
  threads: number
  /** Hashes being computed now (never more than `threads`) and the most ever at once. */
  inFlight: number
  maxInFlight: number
  queued: number
  completed: number
  /** Bounded jobs refused because the queue was full. */
  refused: number
  /** Thread ids of the workers that computed hashes (none is the main thread's). */
  computedOn: number[]
}

export interface Hasher {
  /**
   * scrypt of `secret` on a worker. `bounded` jobs (password checks anyone can
   * trigger) are refused with HasherBusyError when the queue is full;
   * unbounded ones (enrolment, account creation: only administrators reach
   * them) wait their turn.
   */
  scrypt: (secret: string, salt: Uint8Array, params: ScryptParams, bounded: boolean) => Promise<Buffer>
  stats: () => HasherStats
  /** Refuses what waits, stops the workers. */
  close: () => Promise<void>
}

const WORKER_SOURCE = `
const { parentPort, threadId } = require('node:worker_threads')
const { scryptSync } = require('node:crypto')
parentPort.on('message', (m) => {
  try {
    const key = scryptSync(m.secret, m.salt, m.keylen, { N: m.N, r: m.r, p: m.p, maxmem: 256 * m.N * m.r })
    parentPort.postMessage({ key, threadId })
  } catch (e) {
    parentPort.postMessage({ error: e instanceof Error ? e.message : String(e), threadId })
  }
})
`

interface Job { secret: string; salt: Uint8Array; params: ScryptParams; resolve: (key: Buffer) => void; reject: (err: Error) => void }
interface Slot { worker: Worker; job: Job | null }

export function createHasher (opts: HasherOptions): Hasher {
  if (!Number.isInteger(opts.threads) || opts.threads < 1) throw new RangeError(`hasher threads ${opts.threads} must be an integer >= 1`)
  if (!Number.isInteger(opts.maxQueue) || opts.maxQueue < 0) throw new RangeError(`hasher maxQueue ${opts.maxQueue} must be an integer >= 0`)
  const slots: Slot[] = []
  const queue: Job[] = []
  const computedOn = new Set<number>()
  let inFlight = 0
  let maxInFlight = 0
  let completed = 0
  let refused = 0
  let closed = false

  function spawn (): Slot {
    // no execArgv: the worker needs no loader (tsx) and starts faster without one
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false })
    const slot: Slot = { worker, job: null }
    worker.unref()
    worker.on('message', (m: { key?: Uint8Array; error?: string; threadId: number }) => {
      const job = slot.job
      if (job === null) return
      finish(slot)
      completed++
      computedOn.add(m.threadId)
      if (m.key !== undefined) job.resolve(Buffer.from(m.key.buffer, m.key.byteOffset, m.key.byteLength))
      else job.reject(new Error(`scrypt failed: ${m.error ?? 'unknown'}`))
      pump()
    })
    // a worker that dies fails its job and is replaced on the next dispatch
    const lost = (err: Error): void => {
      const i = slots.indexOf(slot)
      if (i >= 0) slots.splice(i, 1)
      const job = slot.job
      if (job !== null) { finish(slot); job.reject(err) }
      if (!closed) pump()
    }
    worker.on('error', lost)
    worker.on('exit', (code) => { lost(new Error(`hash worker exited (${code})`)) })
    slots.push(slot)
    return slot
  }

  function finish (slot: Slot): void {
    slot.job = null
    inFlight--
    // an idle worker must not keep the process alive
    slot.worker.unref()
  }

  function pump (): void {
    while (!closed && queue.length > 0) {
      const slot = slots.find((s) => s.job === null) ?? (slots.length < opts.threads ? spawn() : undefined)
      if (slot === undefined) return
      const job = queue.shift()!
      slot.job = job
      inFlight++
      if (inFlight > maxInFlight) maxInFlight = inFlight
      // a busy worker keeps the process alive until its answer is in
      slot.worker.ref()
      slot.worker.postMessage({ secret: job.secret, salt: job.salt, keylen: job.params.keylen, N: job.params.N, r: job.params.r, p: job.params.p })
    }
  }

  return {
    scrypt: async (secret, salt, params, bounded) => await new Promise<Buffer>((resolve, reject) => {
      if (closed) { reject(new HasherClosedError()); return }
      const idle = inFlight < opts.threads
      if (bounded && !idle && queue.length >= opts.maxQueue) { refused++; reject(new HasherBusyError()); return }
      queue.push({ secret, salt, params, resolve, reject })
      pump()
    }),
    stats: () => ({ threads: opts.threads, inFlight, maxInFlight, queued: queue.length, completed, refused, computedOn: [...computedOn] }),
    close: async () => {
      if (closed) return
      closed = true
      for (const job of queue.splice(0)) job.reject(new HasherClosedError())
      await Promise.all(slots.map(async (s) => await s.worker.terminate()))
    },
  }
}
