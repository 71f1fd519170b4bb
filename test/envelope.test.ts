/**
 * The envelope parser over the whole uint64 range of seq: what protobufjs
 * encodes (fed 64-bit values as {low, high}, which it writes exactly) parses to
 * the same bigint; our encoder writes what protobufjs writes; any field order,
 * repeats and unknown fields parse the same; what no encoder writes is refused.
 * Also the replay window and the associated data over the same range.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { associatedData, ReplayWindow, WINDOW_SIZE } from '../src/crypto/index.ts'
import { decodeEnvelope, encodeEnvelope, EnvelopeType, MAX_SEQ, parseEnvelope } from '../src/decode/index.ts'

const u64 = fc.bigInt({ min: 0n, max: MAX_SEQ })
/** Weighted towards the edges: 2^53 ± a little and 2^64 - a little, where doubles go wrong. */
const seqs = fc.oneof(u64, fc.bigInt({ min: 2n ** 53n - 4n, max: 2n ** 53n + 4n }), fc.bigInt({ min: MAX_SEQ - 4n, max: MAX_SEQ }), fc.bigInt({ min: 0n, max: 300n }))
const u32 = fc.integer({ min: 0, max: 0xffff_ffff })
const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/)
const fields = fc.record({
  version: u32, deviceId: id, seq: seqs, keyId: u32,
  nonce: fc.uint8Array({ minLength: 24, maxLength: 24 }), ciphertext: fc.uint8Array({ minLength: 16, maxLength: 200 }),
})
type Fields = typeof fields extends fc.Arbitrary<infer T> ? T : never

/** protobufjs' encoding, with seq handed over as {low, high} (its exact path for 64-bit values without Long). */
function byProtobufjs (f: Fields): Uint8Array {
  const seq = { low: Number(f.seq & 0xffff_ffffn), high: Number(f.seq >> 32n) }
  return EnvelopeType.encode({ ...f, seq }).finish()
}

function varint (v: bigint): number[] {
  const out: number[] = []
  while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n }
  out.push(Number(v))
  return out
}
const field = (n: number, wire: number, body: number[]): number[] => [...varint(BigInt(n * 8 + wire)), ...body]
const len = (b: ArrayLike<number>): number[] => [...varint(BigInt(b.length)), ...Array.from(b)]

describe('envelope parser over the whole uint64 range', () => {
  it('parses what protobufjs encodes, seq exact to the last bit', () => {
    fc.assert(fc.property(fields, (f) => {
      const e = parseEnvelope(byProtobufjs(f))
      expect(e).toEqual({ ...f, nonce: Buffer.from(f.nonce), ciphertext: Buffer.from(f.ciphertext) })
      expect(typeof e !== 'string' && e.seq).toBe(f.seq)
    }), { numRuns: 2000 })
  })

  it('encodes exactly what protobufjs encodes, and decodeEnvelope accepts every seq of a version-1 frame', () => {
    fc.assert(fc.property(fields, (f) => {
      expect(Buffer.from(encodeEnvelope(f)).toString('hex')).toBe(Buffer.from(byProtobufjs(f)).toString('hex'))
      const r = decodeEnvelope(encodeEnvelope({ ...f, version: 1 }))
      expect(r.ok && r.value.seq).toBe(f.seq)
    }), { numRuns: 2000 })
  })

  it('reads fields in any order, the last of a repeated field, non-minimal varints and skips unknown fields', () => {
    const unknown = fc.oneof(
      fc.tuple(fc.integer({ min: 7, max: 2 ** 29 - 1 }), u64).map(([n, v]) => field(n, 0, varint(v))),
      fc.tuple(fc.integer({ min: 7, max: 1000 }), fc.uint8Array({ maxLength: 40 })).map(([n, b]) => field(n, 2, len(b))),
      fc.integer({ min: 7, max: 1000 }).map((n) => field(n, 1, [1, 2, 3, 4, 5, 6, 7, 8])),
      fc.integer({ min: 7, max: 1000 }).map((n) => field(n, 5, [1, 2, 3, 4])),
    )
    fc.assert(fc.property(fields, seqs, fc.array(unknown, { maxLength: 4 }), fc.nat(), fc.boolean(), (f, earlier, extra, seed, padded) => {
      // seq as a 10-byte varint when padded (a valid, non-minimal encoding)
      const seqBytes = padded ? [...Array.from({ length: 9 }, (_, i) => Number((f.seq >> BigInt(7 * i)) & 0x7fn) | 0x80), Number(f.seq >> 63n)] : varint(f.seq)
      const parts = [
        field(1, 0, varint(BigInt(f.version))), field(2, 2, len(Buffer.from(f.deviceId))), field(3, 0, varint(earlier)), field(4, 0, varint(BigInt(f.keyId))),
        field(5, 2, len(f.nonce)), field(6, 2, len(f.ciphertext)), ...extra,
      ]
      // shuffle deterministically, then put the winning seq last
      const shuffled = parts.map((p, i) => ({ p, k: (i * 7919 + seed) % 104729 })).sort((a, b) => a.k - b.k).map((x) => x.p)
      const bytes = Uint8Array.from([...shuffled.flat(), ...field(3, 0, seqBytes)])
      const e = parseEnvelope(bytes)
      expect(typeof e !== 'string' && e.seq).toBe(f.seq)
      expect(e).toMatchObject({ version: f.version, deviceId: f.deviceId, keyId: f.keyId })
    }), { numRuns: 1000 })
  })

  it('refuses what no conforming encoder writes, and never throws', () => {
    const env = (tail: number[]): Uint8Array => Uint8Array.from([...field(1, 0, [1]), ...tail])
    const refused = [
      field(3, 0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), // 2^64
      field(3, 0, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), // 11 bytes
      field(3, 0, [0xff, 0xff]), // truncated
      field(4, 0, [0x80, 0x80, 0x80, 0x80, 0x10]), // key_id 2^32
      field(3, 2, len([1])), // seq with the wrong wire type
      field(5, 0, [24]), // nonce with the wrong wire type
      field(5, 2, [25, ...new Array<number>(24).fill(0)]), // length past the end
      [0x00, 0x00], // field number 0
      field(9, 3, []), // a group
      field(9, 1, [1, 2, 3]), // truncated fixed64
    ]
    for (const tail of refused) expect(typeof parseEnvelope(env(tail))).toBe('string')
    fc.assert(fc.property(fields, fc.nat(), (f, cut) => {
      const b = encodeEnvelope(f)
      const part = b.subarray(0, cut % b.length)
      const r = parseEnvelope(part)
      // a cut at a field boundary is a shorter valid envelope (its fields re-encode to the same bytes); anywhere else it is refused
      if (typeof r !== 'string') expect(Buffer.from(encodeEnvelope(r))).toEqual(Buffer.from(part))
    }), { numRuns: 500 })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => { expect(() => parseEnvelope(b)).not.toThrow() }), { numRuns: 3000 })
    expect(() => encodeEnvelope({ version: 1, deviceId: 'd', seq: MAX_SEQ + 1n, keyId: 1, nonce: new Uint8Array(24), ciphertext: new Uint8Array(16) })).toThrow(RangeError)
  })
})

describe('replay window and associated data over the whole uint64 range', () => {
  /** Reference model in bigint. */
  class Model {
    seen = new Set<bigint>()
    high = -1n
    check (s: bigint): boolean { return s >= 0n && s <= MAX_SEQ && !this.seen.has(s) && s > this.high - BigInt(WINDOW_SIZE) }
    accept (s: bigint): void { this.seen.add(s); if (s > this.high) this.high = s }
  }

  it('behaves like the reference model near 2^53 and near 2^64', () => {
    const base = fc.oneof(fc.constant(2n ** 53n - 600n), fc.constant(MAX_SEQ - 5000n), fc.bigInt({ min: 0n, max: MAX_SEQ - 5000n }))
    const op = fc.oneof(fc.integer({ min: -WINDOW_SIZE - 5, max: 40 }), fc.integer({ min: WINDOW_SIZE - 3, max: 3 * WINDOW_SIZE }))
    fc.assert(fc.property(base, fc.array(op, { maxLength: 200 }), (b, ops) => {
      const w = new ReplayWindow()
      const m = new Model()
      for (const d of ops) {
        let s = (m.high < 0n ? b : m.high) + BigInt(d)
        if (s < 0n) s = 0n
        const expected = m.check(s)
        expect(w.check(s)).toBe(expected)
        if (expected) { w.accept(s); m.accept(s) }
        expect(w.high).toBe(m.high)
      }
      expect(w.check(MAX_SEQ + 1n)).toBe(false)
      expect(w.check(-1n)).toBe(false)
    }), { numRuns: 300 })
  })

  it('restores a window at the top of the range exactly', () => {
    const w = ReplayWindow.restore(MAX_SEQ, [MAX_SEQ, MAX_SEQ - 1n, MAX_SEQ - 1023n, MAX_SEQ - 1024n])
    expect([MAX_SEQ, MAX_SEQ - 1n, MAX_SEQ - 2n, MAX_SEQ - 1023n, MAX_SEQ - 1024n].map((s) => w.check(s))).toEqual([false, false, true, false, false])
  })

  it('writes seq big-endian over all 64 bits', () => {
    fc.assert(fc.property(u64, (s) => {
      const ad = associatedData('t', 'd', 'spot', s, 7)
      expect(ad.readBigUInt64BE(ad.length - 12)).toBe(s)
      if (s <= BigInt(Number.MAX_SAFE_INTEGER)) expect(associatedData('t', 'd', 'spot', Number(s), 7)).toEqual(ad)
    }), { numRuns: 1000 })
    expect(associatedData('care-a', 'dev-1', 'spot', MAX_SEQ, 1).toString('hex')).toBe(
      Buffer.concat([Buffer.from('vf1\0care-a\0dev-1\0spot\0', 'latin1'), Buffer.from('ffffffffffffffff00000001', 'hex')]).toString('hex'))
  })
})
