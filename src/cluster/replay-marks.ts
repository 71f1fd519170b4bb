/**
 * Replay marks shared between nodes: per device, the sequence numbers stored
 * within one replay window below its highest, in a Redis sorted set (members
 * are 20-digit zero-padded decimals, all of score 0, so lexicographic order is
 * numeric order and every uint64 stays exact). A node writes a mark once the
 * message's log group has committed and before its PUBACK; a node that takes a
 * device's connection reads them first, so a frame accepted on node A is a
 * replay on node B.
 *
 * While Redis cannot be reached a mark is kept here and written when it is
 * back; the PUBACK does not wait for it (see README "Several nodes").
 */
import type { Redis } from 'ioredis'
import { WINDOW_SIZE } from '../crypto/index.ts'

const KEY = 'vf:seq:'
const pad = (s: bigint): string => s.toString().padStart(20, '0')

export interface ReplayMarks {
  /** Resolves once the mark is in Redis, or at once (kept to write later) when Redis is out of reach. */
  commit: (device: string, seq: bigint) => Promise<void>
  /** The device's marks, ascending; null when Redis cannot be read. */
  load: (device: string) => Promise<bigint[] | null>
  /** Marks not yet in Redis: kept, or being written by a flush. */
  pending: () => number
  /** Writes the waiting marks (called when the link is back). */
  flush: () => Promise<void>
}

export function createReplayMarks (redis: Redis, up: () => boolean): ReplayMarks {
  const waiting = new Map<string, bigint[]>()
  // taken out of `waiting` by a flush whose write has not answered yet: still not in Redis
  let writing = 0
  const keep = (device: string, seq: bigint): void => {
    const l = waiting.get(device)
    if (l === undefined) waiting.set(device, [seq])
    else l.push(seq)
  }
  const write = async (device: string, seqs: readonly bigint[]): Promise<void> => {
    const args: string[] = []
    for (const s of seqs) args.push('0', pad(s))
    await redis.multi().zadd(KEY + device, ...args).zremrangebyrank(KEY + device, 0, -(WINDOW_SIZE + 1)).exec()
  }
  return {
    commit: async (device, seq) => {
      if (!up()) { keep(device, seq); return }
      try {
        await write(device, [seq])
      } catch {
        keep(device, seq)
      }
    },
    load: async (device) => {
      if (!up()) return null
      try {
        return (await redis.zrange(KEY + device, 0, -1)).map((m) => BigInt(m))
      } catch {
        return null
      }
    },
    pending: () => { let n = writing; for (const l of waiting.values()) n += l.length; return n },
    flush: async () => {
      for (const [device, seqs] of [...waiting]) {
        waiting.delete(device)
        writing += seqs.length
        try {
          await write(device, seqs)
        } catch {
          for (const s of seqs) keep(device, s)
          return
        } finally {
          writing -= seqs.length
        }
      }
    },
  }
}
