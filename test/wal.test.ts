/** The write-ahead log on a real file system: durability order, torn and corrupt tails, checkpoints. */
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { WriteAheadLog } from '../src/storage/index.ts'
import { tempDir } from './support/node.ts'

let dirs: Array<ReturnType<typeof tempDir>> = []
const fresh = () => { const d = tempDir('vf-wal-'); dirs.push(d); return d.path }
afterEach(() => { for (const d of dirs) d.remove(); dirs = [] })
const B = (s: string): Buffer => Buffer.from(s, 'utf8')
const segments = (dir: string) => readdirSync(join(dir)).filter((f) => f.endsWith('.wal')).sort()

describe('write-ahead log', () => {
  it('returns every appended record after a reopen, in order, with LSNs that keep rising', async () => {
    const dir = fresh()
    const { wal } = await WriteAheadLog.open(dir, { segmentBytes: 1024 })
    const lsns: number[] = []
    for (let k = 0; k < 20; k++) lsns.push(...await Promise.all(Array.from({ length: 10 }, (_, j) => { const i = k * 10 + j; return wal.append(i % 2 === 0 ? 'a' : 'b', i, B(`row ${i}\tü\n`)) })))
    expect(lsns).toEqual([...lsns].sort((x, y) => x - y))
    await wal.close()
    expect(segments(dir).length).toBeGreaterThan(3) // rotated
    const { wal: again, recovered } = await WriteAheadLog.open(dir, { segmentBytes: 1024 })
    expect(recovered.records.get('a')!.map((r) => r.chunk.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `row ${2 * i}\tü\n`))
    expect(recovered.records.get('b')!.map((r) => r.rows)).toEqual(Array.from({ length: 100 }, (_, i) => 2 * i + 1))
    expect(await again.append('a', 1, B('x'))).toBeGreaterThan(Math.max(...lsns))
    await again.close()
  })

  it('drops a torn or corrupted tail and keeps every record before it', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.nat(), fc.constantFrom('truncate', 'flip'), async (n, at, how) => {
      const dir = fresh()
      const { wal } = await WriteAheadLog.open(dir, { segmentBytes: 1 << 30 })
      for (let i = 0; i < n; i++) await wal.append('t', 1, B(`record ${i}\n`))
      await wal.close()
      const file = join(dir, segments(dir).filter((f) => statSync(join(dir, f)).size > 0).at(-1)!)
      const size = statSync(file).size
      // damage somewhere inside the last record (the one a crash could have torn)
      const lastLen = 8 + 1 + 6 + 1 + 1 + 4 + `record ${n - 1}\n`.length
      const pos = size - lastLen + 1 + (at % (lastLen - 1))
      if (how === 'truncate') truncateSync(file, pos)
      else { const b = readFileSync(file); b[pos]! ^= 0x40; writeFileSync(file, b) }
      const { wal: again, recovered } = await WriteAheadLog.open(dir, { segmentBytes: 1 << 30 })
      const got = recovered.records.get('t')?.map((r) => r.chunk.toString()) ?? []
      expect(got).toEqual(Array.from({ length: n - 1 }, (_, i) => `record ${i}\n`))
      expect(recovered.discardedBytes).toBeGreaterThan(0)
      // and the log goes on after the cut
      await again.append('t', 1, B('after\n'))
      await again.close()
      const { recovered: third, wal: w3 } = await WriteAheadLog.open(dir, { segmentBytes: 1 << 30 })
      expect(third.records.get('t')!.map((r) => r.chunk.toString()).at(-1)).toBe('after\n')
      await w3.close()
    }), { numRuns: 30 })
  })

  it('checkpoints hide shipped records and delete segments every table has shipped', async () => {
    const dir = fresh()
    const { wal } = await WriteAheadLog.open(dir, { segmentBytes: 256 })
    const a = await Promise.all(Array.from({ length: 30 }, (_, i) => wal.append('a', 1, B(`a${i}\n`))))
    const b = await wal.append('b', 1, B('b0\n'))
    const before = segments(dir).length
    wal.checkpoint('a', a.at(-1)!)
    // nothing is deleted before the checkpoint that releases it is on disk
    expect(segments(dir).length).toBe(before)
    await wal.checkpointsWritten()
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8'))).toEqual({ a: a.at(-1) })
    // the segment holding b's record stays until b is shipped too
    expect(segments(dir).length).toBeLessThan(before)
    expect(segments(dir).length).toBeGreaterThan(0)
    await wal.close()
    const { wal: again, recovered } = await WriteAheadLog.open(dir, { segmentBytes: 256 })
    expect(recovered.records.get('a')).toBeUndefined()
    expect(recovered.records.get('b')!.map((r) => r.lsn)).toEqual([b])
    await again.intent('b', b, b)
    again.checkpoint('b', b)
    await again.close()
    const { recovered: last, wal: w3 } = await WriteAheadLog.open(dir, { segmentBytes: 256 })
    expect(last.records.size).toBe(0)
    expect(last.intents.size).toBe(0)
    await w3.close()
  })

  it('group commit: appends made together share one fsync yet each resolves only once durable', async () => {
    const dir = fresh()
    const { wal } = await WriteAheadLog.open(dir, { segmentBytes: 1 << 30 })
    const settled: number[] = []
    const all = Array.from({ length: 500 }, (_, i) => wal.append('t', 1, B(`${i}\n`)).then(() => settled.push(i)))
    expect(settled).toEqual([]) // nothing is acknowledged before the write
    await Promise.all(all)
    expect(settled).toEqual(Array.from({ length: 500 }, (_, i) => i)) // and in order
    await wal.close()
  })

  it('writes every record byte for byte, however large and whatever is appended while a group commit is being written', async () => {
    // the log encodes a group's records into one of two buffers that take turns (1 MiB each to begin with,
    // grown for a larger group): records bigger than a buffer, groups bigger than one, and appends made
    // while the other buffer is on its way to disk must all come back as they were given
    const size = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 1000, max: 20_000 }), fc.integer({ min: 900_000, max: 2_500_000 }))
    const op = fc.record({ table: fc.constantFrom('a', 'bb'), rows: fc.nat({ max: 1000 }), size, seed: fc.nat({ max: 255 }), pair: fc.boolean(), during: fc.boolean() })
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
      const dir = fresh()
      let duringWrite: Array<() => void> = []
      const { wal } = await WriteAheadLog.open(dir, {
        segmentBytes: 1 << 30,
        // appends marked `during` are made while a group commit is under way, into the other buffer
        beforeWrite: async () => { const now = duringWrite; duringWrite = []; for (const f of now) f(); await new Promise((resolve) => setImmediate(resolve)) },
      })
      const chunk = (n: number, seed: number): Buffer => { const b = Buffer.alloc(n); for (let i = 0; i < n; i += 997) b[i] = (seed + i) & 0xff; return b.fill(seed, 0, Math.min(n, 7)) }
      const expected = new Map<string, Array<[number, string]>>()
      const note = (table: string, rows: number, b: Buffer): void => { const l = expected.get(table) ?? []; l.push([rows, b.toString('base64')]); expected.set(table, l) }
      const appends: Array<Promise<unknown>> = []
      for (const o of ops) {
        const b = chunk(o.size, o.seed)
        const go = (): void => {
          note(o.table, o.rows, b)
          if (o.pair) { note('seq', 1, b.subarray(0, 8)); appends.push(wal.appendPair(o.table, o.rows, b, 'seq', 1, b.subarray(0, 8))) } else appends.push(wal.append(o.table, o.rows, b))
        }
        if (o.during) duringWrite.push(go); else go()
      }
      // the first write lets the `during` appends in; if nothing was appended yet, one record starts it
      if (appends.length === 0) { const b = chunk(3, 9); note('a', 1, b); appends.push(wal.append('a', 1, b)) }
      while (appends.length > 0) await Promise.all(appends.splice(0))
      await wal.close()
      const { wal: again, recovered } = await WriteAheadLog.open(dir, { segmentBytes: 1 << 30 })
      const got = new Map([...recovered.records].map(([t, rs]) => [t, rs.map((r): [number, string] => [r.rows, r.chunk.toString('base64')])]))
      // per table in append order; LSN order across tables is the order appends were made
      expect(got).toEqual(expected)
      await again.close()
    }), { numRuns: 25 })
  })

  it('a failed group commit refuses every append in it and each one queued behind it; a paired append is durable whole or not at all', async () => {
    const dir = fresh()
    let failNext = false
    let started: () => void = () => {}
    const writing = new Promise<void>((resolve) => { started = resolve })
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => { release = resolve })
    const { wal } = await WriteAheadLog.open(dir, {
      segmentBytes: 1 << 20,
      // fault hook: the next group commit waits until released, then its write fails
      beforeWrite: async () => { if (!failNext) return; started(); await released; throw Object.assign(new Error('injected write failure'), { code: 'EIO' }) },
    })
    const first = await wal.appendPair('t', 2, B('rows 1\n'), 'seq', 1, B('seq 1\n'))
    failNext = true
    const group = [wal.appendPair('t', 2, B('rows 2\n'), 'seq', 1, B('seq 2\n')), wal.append('t', 1, B('rows 3\n'))]
    await writing
    // taken while the failing write is under way: it belongs to the next group commit, which never comes
    const behind = wal.append('t', 1, B('rows 4\n'))
    release()
    const outcomes = await Promise.allSettled([...group, behind])
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected'])
    await wal.close()
    const { wal: again, recovered } = await WriteAheadLog.open(dir, { segmentBytes: 1 << 20 })
    // of the pairs, only the acknowledged one, both halves, the sequence number's LSN the next after its rows'
    expect(recovered.records.get('t')!.map((r) => [r.lsn, r.rows, r.chunk.toString()])).toEqual([[first, 2, 'rows 1\n']])
    expect(recovered.records.get('seq')!.map((r) => [r.lsn, r.rows, r.chunk.toString()])).toEqual([[first + 1, 1, 'seq 1\n']])
    await again.close()
  })

  it('LSNs keep rising across any number of idle reopens, even with every segment shipped and deleted', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 6 }), async (appends) => {
      const dir = fresh()
      let high = 0
      for (const n of appends) {
        const { wal } = await WriteAheadLog.open(dir, { segmentBytes: 256 })
        for (let i = 0; i < n; i++) {
          const lsn = await wal.append('t', 1, B(`r${i}\n`))
          expect(lsn).toBeGreaterThan(high)
          high = lsn
          await wal.intent('t', lsn, lsn)
          wal.checkpoint('t', lsn) // shipped at once: the segments holding it may all go
        }
        await wal.close()
      }
      // a reopen after all of that still starts above everything ever handed out
      const { wal } = await WriteAheadLog.open(dir, { segmentBytes: 256 })
      expect(await wal.append('t', 1, B('last\n'))).toBeGreaterThan(high)
      await wal.close()
    }), { numRuns: 25 })
  })
})
