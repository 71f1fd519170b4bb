/**
 * Alarms are read ahead of telemetry when the node is busy. One turn of the event loop runs the read
 * callback of every socket that has data: at 10,000 connections and 1,200 messages a second that was
 * 100–300 ms of TLS, parsing, decryption and row encoding in one go (a speed-12 soak's CPU profile), and
 * a fall alarm that arrived meanwhile waited for all of it.
 *
 * So bulk connections (bracelets' gateway phones, cVitals kits, and any connection before it has
 * authenticated) get a slice of each turn: once `sliceMs` have passed since the turn's first bulk read,
 * a bulk connection's data waits (its socket paused, so TCP slows the device) in one queue, first come
 * first served, and is taken up in the next turns, a slice at a time. Between two slices the event loop
 * polls its sockets again, and a priority connection's data (cAlarm units, responders) is always taken
 * at once. Nothing is dropped and nothing is reordered within a connection: a connection has at most one
 * chunk waiting, and its socket stays paused until that chunk is taken.
 */

/** What a connection's data needs: run now, or queued behind other bulk connections' waiting data. */
export interface ReadScheduler {
  /** Runs `work` now if the turn's bulk slice has room (or `priority`), else queues it; true if it ran. */
  run: (work: () => void, priority: boolean) => boolean
  /** Chunks waiting now (a gauge), and in all so far. */
  readonly waiting: number
  readonly deferred: number
}

export interface ReadSchedulerOptions {
  /** The bulk slice of one turn; 0 turns the scheduler off (every read runs at once). */
  sliceMs: number
  now?: () => number
  /** How a callback is put after the next poll of the sockets (setImmediate; tests drive it themselves). */
  later?: (f: () => void) => void
  /**
   * How a callback is put after what a read set off (process.nextTick; tests drive it themselves). A read
   * hands its chunk to the connection's stream, which parses it and runs the pipeline in a tick of its
   * own: the slice is measured over that work, not over the hand-over.
   */
  soon?: (f: () => void) => void
}

export function createReadScheduler (opts: ReadSchedulerOptions): ReadScheduler {
  const now = opts.now ?? performance.now.bind(performance)
  const later = opts.later ?? ((f: () => void) => { setImmediate(f) })
  const soon = opts.soon ?? ((f: () => void) => { process.nextTick(f) })
  const queue: Array<() => void> = []
  let head = 0
  /** When this turn's first bulk read ran; -1: none yet. */
  let turnStart = -1
  let turnEnds = false
  let deferred = 0

  /**
   * After this turn's poll: a new slice, and the waiting reads take the first part of it, one at a time,
   * each after the work the one before set off. Run in one go, the reads only hand their chunks over,
   * and the parsing and the pipeline of all of them followed in one run of ticks, whatever the slice
   * (a speed-6 soak's CPU profile: 171 ms of it in one check phase).
   */
  const endTurn = (): void => {
    turnEnds = false
    if (head === queue.length) { turnStart = -1; return }
    const start = now()
    turnStart = start
    const take = (): void => {
      const work = queue[head]!
      queue[head++] = noop
      try {
        work()
      } finally {
        // the next one only after what this one set off (its stream's tick), with the clock read then
        soon(next)
      }
    }
    const next = (): void => {
      if (head < queue.length && now() - start < opts.sliceMs) take()
      else spent(start)
    }
    // at least one read a turn, however long the last one took: the queue always moves
    take()
  }

  /** This turn's reads are done: the queue is empty, or the slice is spent and the rest waits for the next turn. */
  const spent = (start: number): void => {
    if (head === queue.length) {
      queue.length = 0
      head = 0
      turnStart = -1
      return
    }
    if (head > 1024 && head * 2 > queue.length) { queue.splice(0, head); head = 0 }
    // bulk reads of the next poll wait too, priority ones do not
    turnStart = start
    if (!turnEnds) { turnEnds = true; later(endTurn) }
  }

  return {
    run (work, priority) {
      if (priority || opts.sliceMs <= 0) { work(); return true }
      const t = now()
      if (turnStart < 0) turnStart = t
      if (!turnEnds) { turnEnds = true; later(endTurn) }
      // behind any waiting read (first come, first served across connections), else while the slice has room
      if (head === queue.length && t - turnStart < opts.sliceMs) { work(); return true }
      queue.push(work)
      deferred++
      return false
    },
    get waiting () { return queue.length - head },
    get deferred () { return deferred },
  }
}

function noop (): void {}
