/**
 * The envelope's wire format (proto/envelope.proto), read and written by hand
 * so that `seq`, a uint64, is exact over its whole range (protobufjs without
 * Long reads 64-bit varints as doubles, which loses every integer above 2^53).
 *
 * The reader accepts any valid protobuf encoding of Envelope: fields in any
 * order, repeated (the last one wins), non-minimal varints (up to 5 bytes for
 * a uint32, 10 for seq), unknown fields of
 * wire types 0, 1, 2 and 5 skipped. It refuses what no conforming encoder
 * writes: a known field with another wire type, a uint32 field or length above
 * 2^32 - 1, a varint above 2^64 - 1 or longer than 10 bytes, groups, field
 * number 0, and anything truncated. nonce and ciphertext are views into the
 * input, not copies. It never throws.
 *
 * The writer emits fields in number order and leaves out those at their
 * default (0, empty), as protobuf encoders do for proto3; for the same values
 * protobufjs, Python protobuf and protoc-generated code write the same bytes.
 */
import type { Envelope } from './messages.ts'

/** Largest sequence number: 2^64 - 1. */
export const MAX_SEQ = 0xffff_ffff_ffff_ffffn

const VARINT = 0
const I64 = 1
const LEN = 2
const I32 = 5
const WIRE: Readonly<Record<number, number>> = { 1: VARINT, 2: LEN, 3: VARINT, 4: VARINT, 5: LEN, 6: LEN }

const EMPTY = new Uint8Array(0)
const utf8 = new TextDecoder('utf-8')

/**
 * The reader's position in the buffer being parsed and the reason it stopped. One for the module:
 * parseEnvelope never yields, and its readers are plain functions over it (no closures to allocate
 * per message on the hot path).
 */
const at: { buf: Uint8Array; p: number; end: number; failure: string } = { buf: EMPTY, p: 0, end: 0, failure: '' }

/** A varint of at most 32 bits (tags, lengths, uint32 fields); -1 on failure. */
function varint32 (): number {
  const { buf, end } = at
  let v = 0
  for (let i = 0; i < 5; i++) {
    if (at.p >= end) { at.failure = 'truncated varint'; return -1 }
    const b = buf[at.p++]!
    if (i === 4 && b > 0x0f) { at.failure = 'varint above 2^32 - 1 where a uint32 is expected'; return -1 }
    v += (b & 0x7f) * 2 ** (7 * i)
    if (b < 0x80) return v
  }
  at.failure = 'varint above 2^32 - 1 where a uint32 is expected'
  return -1
}

/** A uint64 varint as a bigint; null on failure. */
function varint64 (): bigint | null {
  const { buf, end } = at
  let lo = 0
  let hi = 0
  for (let i = 0; i < 10; i++) {
    if (at.p >= end) { at.failure = 'truncated varint'; return null }
    const b = buf[at.p++]!
    const bits = b & 0x7f
    if (i < 4) lo |= bits << (7 * i)
    else if (i === 4) { lo |= bits << 28; hi = bits >>> 4 } else if (i < 9) hi |= bits << (7 * i - 32)
    else if (bits > 1) { at.failure = 'varint above 2^64 - 1'; return null } else hi |= bits << 31
    if (b < 0x80) return hi === 0 ? BigInt(lo >>> 0) : (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)
  }
  at.failure = 'varint longer than 10 bytes'
  return null
}

function bytes (): Uint8Array | null {
  const n = varint32()
  if (n < 0) return null
  if (n > at.end - at.p) { at.failure = 'length runs past the end'; return null }
  const out = at.buf.subarray(at.p, at.p + n)
  at.p += n
  return out
}

/** Parses an envelope, or returns a reason (that never quotes the input). */
export function parseEnvelope (buf: Uint8Array): Envelope | string {
  at.buf = buf
  at.p = 0
  at.end = buf.length
  at.failure = ''
  try {
    return parse()
  } finally {
    at.buf = EMPTY // the module keeps no reference to a payload
  }
}

function parse (): Envelope | string {
  let version = 0
  let deviceId = ''
  let seq = 0n
  let keyId = 0
  let nonce: Uint8Array = EMPTY
  let ciphertext: Uint8Array = EMPTY
  while (at.p < at.end) {
    const tag = varint32()
    if (tag < 0) return at.failure
    const field = Math.floor(tag / 8)
    const wire = tag % 8
    if (field === 0) return 'field number 0'
    const expected = WIRE[field]
    if (expected !== undefined && expected !== wire) return `field ${field} has wire type ${wire}, expected ${expected}`
    switch (field) {
      case 1: { const v = varint32(); if (v < 0) return at.failure; version = v; continue }
      case 3: { const v = varint64(); if (v === null) return at.failure; seq = v; continue }
      case 4: { const v = varint32(); if (v < 0) return at.failure; keyId = v; continue }
      case 2: { const v = bytes(); if (v === null) return at.failure; deviceId = v.length === 0 ? '' : utf8.decode(v); continue }
      case 5: { const v = bytes(); if (v === null) return at.failure; nonce = v; continue }
      case 6: { const v = bytes(); if (v === null) return at.failure; ciphertext = v; continue }
    }
    // an unknown field: skip it
    if (wire === VARINT) { if (varint64() === null) return at.failure } else if (wire === LEN) { if (bytes() === null) return at.failure } else if (wire === I64 || wire === I32) {
      const n = wire === I64 ? 8 : 4
      if (n > at.end - at.p) return 'truncated fixed-width field'
      at.p += n
    } else return `unsupported wire type ${wire}`
  }
  return { version, deviceId, seq, keyId, nonce, ciphertext }
}

export interface EnvelopeFields {
  version: number
  deviceId: string
  /** 0 .. 2^64 - 1; a number must be a safe integer. */
  seq: bigint | number
  keyId: number
  nonce: Uint8Array
  ciphertext: Uint8Array
}

/** Encodes an envelope: fields in number order, defaults left out (canonical proto3). */
export function encodeEnvelope (e: EnvelopeFields): Uint8Array {
  const seq = typeof e.seq === 'bigint' ? e.seq : BigInt(e.seq)
  if (seq < 0n || seq > MAX_SEQ) throw new RangeError('seq must be within 0 .. 2^64 - 1')
  for (const [name, v] of [['version', e.version], ['keyId', e.keyId]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`${name} must be a uint32`)
  }
  const id = Buffer.from(e.deviceId, 'utf8')
  const out = Buffer.allocUnsafe(64 + id.length + e.nonce.length + e.ciphertext.length)
  let o = 0
  const varint = (v: bigint | number): void => {
    let n = BigInt(v)
    while (n >= 0x80n) { out[o++] = Number(n & 0x7fn) | 0x80; n >>= 7n }
    out[o++] = Number(n)
  }
  const len = (field: number, b: Uint8Array): void => {
    if (b.length === 0) return
    varint(field * 8 + LEN); varint(b.length); out.set(b, o); o += b.length
  }
  if (e.version !== 0) { varint(1 * 8 + VARINT); varint(e.version) }
  len(2, id)
  if (seq !== 0n) { varint(3 * 8 + VARINT); varint(seq) }
  if (e.keyId !== 0) { varint(4 * 8 + VARINT); varint(e.keyId) }
  len(5, e.nonce)
  len(6, e.ciphertext)
  return out.subarray(0, o)
}
