/**
 * RowBinary rows re-laid as a Native block (src/storage/native.ts), judged by ClickHouse itself: random
 * rows are written with RowWriter, re-laid, and chDB reads the Native file back as the same rows it reads
 * from the RowBinary one (a wrong length, offset or null map shifts or fails every column after it).
 * The relay worker (native-relay.ts) runs the same function from its source on a thread of its own.
 */
import { readFileSync } from 'node:fs'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeConnection, connect, type StorageConnection } from '../src/storage/connection.ts'
import { nativeLayout, relayRows } from '../src/storage/native.ts'
import { createNativeRelay, RELAY_THREAD_NAME } from '../src/storage/native-relay.ts'
import { threadCpuSeconds } from '../src/api/thread-cpu.ts'
import { RowWriter } from '../src/storage/row-binary.ts'
import { tempDir } from './support/node.ts'

const dir = tempDir('vf-native-')
let conn: StorageConnection
beforeAll(async () => { conn = await connect({ dataDir: dir.path, database: 'nat' }) })
afterAll(async () => { await closeConnection(conn); dir.remove() })

const COLUMNS = [
  ['lc', 'LowCardinality(String)'], ['s', 'String'], ['u8', 'UInt8'], ['u16', 'UInt16'], ['u32', 'UInt32'], ['u64', 'UInt64'],
  ['t', 'DateTime64(3, \'UTC\')'], ['f32', 'Float32'], ['f64', 'Float64'], ['nf', 'Nullable(Float32)'],
  ['nt', 'Nullable(DateTime64(3, \'UTC\'))'], ['nd', 'Nullable(Float64)'],
] as const
const NAMES = COLUMNS.map(([n]) => n)
const TYPES = COLUMNS.map(([, t]) => t)
const structure = (types: readonly string[]): string => NAMES.map((n, i) => `${n} ${types[i]!}`).join(', ')

const finite = { noNaN: true, noDefaultInfinity: true } as const
const row = fc.record({
  lc: fc.constantFrom('heart_rate', 'spo2', 'steps', ''),
  s: fc.string({ unit: 'binary', maxLength: 300 }), // multi-byte UTF-8, lengths across the 1-byte varint boundary
  u8: fc.integer({ min: 0, max: 255 }),
  u16: fc.integer({ min: 0, max: 65535 }),
  u32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  u64: fc.maxSafeNat(),
  t: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  f32: fc.float(finite),
  f64: fc.double(finite),
  nf: fc.option(fc.float({ ...finite, min: -1e6, max: 1e6 }), { nil: null }),
  nt: fc.option(fc.integer({ min: 0, max: 4_102_444_800_000 }), { nil: null }),
  nd: fc.option(fc.double(finite), { nil: null }),
})
type Row = typeof row extends fc.Arbitrary<infer R> ? R : never

function rowBinary (rows: readonly Row[]): Buffer {
  const w = new RowWriter()
  for (const r of rows) {
    w.string(r.lc); w.string(r.s); w.u8(r.u8); w.u16(r.u16); w.u32(r.u32); w.u64(r.u64); w.time(r.t); w.f32(r.f32); w.f64(r.f64)
    w.nullableF32(r.nf); w.nullableTime(r.nt); w.nullableF64(r.nd)
  }
  return w.take()
}

async function read (file: string, format: string, types: readonly string[]): Promise<string> {
  return (await (await conn.client.query({
    query: `SELECT * FROM file({file:String}, ${format}, {structure:String})`,
    query_params: { file, structure: structure(types) }, format: 'JSONCompactEachRow',
  })).text())
}

describe('Native relay of RowBinary rows', () => {
  const layout = nativeLayout(TYPES)!

  it('lays out strings, fixed widths and Nullable ones, and sends LowCardinality as String', () => {
    expect(layout.layout).toEqual([0, 0, 1, 2, 4, 8, 8, 4, 8, -4, -8, -8])
    expect(layout.sentAs[0]).toBe('String')
    expect(layout.sentAs.slice(1)).toEqual(TYPES.slice(1))
    // types it does not write: the table keeps RowBinary
    for (const t of ['Array(String)', 'Map(String, UInt32)', 'Nullable(String)', 'Decimal(9, 2)', 'Tuple(UInt8)', 'LowCardinality(Nullable(String))']) {
      expect(nativeLayout(['String', t])).toBeNull()
    }
  })

  it('writes a block ClickHouse reads back as the rows RowBinary held', async () => {
    let run = 0
    await fc.assert(fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 40 }), async (rows) => {
      const rb = join(dir.path, `rows-${run}.rb`)
      const nat = join(dir.path, `rows-${run++}.native`)
      const body = rowBinary(rows)
      writeFileSync(rb, body)
      const { block, rows: n } = relayRows(body, layout.layout, NAMES, layout.sentAs)
      expect(n).toBe(rows.length)
      writeFileSync(nat, block)
      const fromNative = await read(nat, 'Native', layout.sentAs)
      expect(fromNative.trim().split('\n')).toHaveLength(rows.length)
      expect(fromNative).toBe(await read(rb, 'RowBinary', TYPES))
    }), { numRuns: 40 })
  })

  it('refuses rows that end inside a row, wherever they are cut', () => {
    fc.assert(fc.property(fc.array(row, { minLength: 1, maxLength: 5 }), fc.nat(), (rows, at) => {
      const body = rowBinary(rows)
      const ends = new Set<number>([0])
      let o = 0
      for (const r of rows) { o += rowBinary([r]).length; ends.add(o) }
      const cut = at % body.length
      if (ends.has(cut)) expect(relayRows(body.subarray(0, cut), layout.layout, NAMES, layout.sentAs).rows).toBe([...ends].filter((e) => e > 0 && e <= cut).length)
      else expect(() => relayRows(body.subarray(0, cut), layout.layout, NAMES, layout.sentAs)).toThrow(RangeError)
    }), { numRuns: 300 })
  })

  it('runs on a worker thread from its own source, and a failure there fails only its batch', async () => {
    const relay = createNativeRelay()
    try {
      const rows = fc.sample(row, { numRuns: 30, seed: 18 })
      const body = rowBinary(rows)
      const file = join(dir.path, 'worker.native')
      await relay.write(file, body, layout.layout, NAMES, layout.sentAs)
      expect(Buffer.from(readFileSync(file)).equals(Buffer.from(relayRows(body, layout.layout, NAMES, layout.sentAs).block))).toBe(true)
      expect(await read(file, 'Native', layout.sentAs)).toBe(await read((writeFileSync(join(dir.path, 'worker.rb'), body), join(dir.path, 'worker.rb')), 'RowBinary', TYPES))
      await expect(relay.write(join(dir.path, 'cut.native'), body.subarray(0, body.length - 1), layout.layout, NAMES, layout.sentAs)).rejects.toThrow(/native relay failed: rows end inside a row/)
      await relay.write(file, body, layout.layout, NAMES, layout.sentAs)
      const stats = relay.stats()
      expect(stats).toMatchObject({ batches: 2, rows: 60 })
      expect(stats.threads.length).toBe(1)
      expect(stats.threads).not.toContain(threadId)
      // named for the per-thread CPU table (Linux)
      expect(Object.keys(threadCpuSeconds())).toContain(RELAY_THREAD_NAME)
    } finally {
      await relay.close()
    }
    await expect(relay.write(join(dir.path, 'closed.native'), Buffer.alloc(0), [], [], [])).rejects.toThrow(/closed/)
  })
})
