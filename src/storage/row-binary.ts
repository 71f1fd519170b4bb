/**
 * ClickHouse RowBinary encoding for the batcher: little-endian numbers,
 * strings as LEB128 length + UTF-8, Nullable as a 0/1 byte before the value,
 * DateTime64(3) as Int64 milliseconds. One growable buffer per encoding call;
 * the caller takes a copy of what a message wrote.
 */
export class RowWriter {
  private buf: Buffer
  // DataView writes are inlined by V8; Buffer.write*LE validate their arguments on every call
  private dv: DataView
  private o = 0

  constructor (initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes)
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length)
  }

  reset (): void { this.o = 0 }
  get length (): number { return this.o }
  /** A copy of everything written since reset(). */
  take (): Buffer { return Buffer.from(this.buf.subarray(0, this.o)) }

  /** Makes room for n more bytes. */
  room (n: number): void {
    if (this.o + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.o + n))
    this.buf.copy(next, 0, 0, this.o)
    this.buf = next
    this.dv = new DataView(next.buffer, next.byteOffset, next.length)
  }

  private varint (n: number): void {
    this.room(5)
    while (n >= 0x80) { this.buf[this.o++] = (n & 0x7f) | 0x80; n >>>= 7 }
    this.buf[this.o++] = n
  }

  string (s: string): void {
    const len = Buffer.byteLength(s, 'utf8')
    this.varint(len)
    this.room(len)
    this.o += this.buf.write(s, this.o, 'utf8')
  }

  /** Bytes encoded earlier (a run of fields that repeats row after row). */
  raw (b: Uint8Array): void {
    const n = b.length
    this.room(n)
    if (n < 64) this.o = this.put(b, this.o)
    else { this.buf.set(b, this.o); this.o += n }
  }

  /**
   * One sample row of vital_samples: the ids (`who`) and metric with category (`label`), ts, value,
   * duration, quality, the message's sequence number (`seq`, its 8 bytes written once per message), idx,
   * the grant's provenance (`grant`), then ingested_at. One bounds check per row, not one per field:
   * the hot path writes ~70 of these per bracelet batch.
   */
  sampleRow (who: Uint8Array, label: Uint8Array, ts: number, value: number, duration: number, quality: number, seq: Uint8Array, idx: number, grant: Uint8Array, ingestedAt: number): void {
    this.room(who.length + label.length + 8 + 4 + 4 + 1 + 8 + 2 + grant.length + 8)
    const dv = this.dv
    let o = this.put(label, this.put(who, this.o))
    this.putU64(o, ts)
    dv.setFloat32(o + 8, value, true)
    dv.setUint32(o + 12, duration >>> 0, true)
    this.buf[o + 16] = quality
    o = this.put(seq, o + 17)
    dv.setUint16(o, idx, true)
    o = this.put(grant, o + 2)
    this.putU64(o, ingestedAt)
    this.o = o + 8
  }

  /**
   * The sample rows of one series, values[from..n): sampleRow's layout, with ts = t0 + i * intervalMs, the
   * value and quality (255 where `quality` has none) of sample i, idx = idx0 + i. Everything else is the
   * same in every row of a series: the first row is written whole, copied into the others in doubling
   * runs (native copies), and only ts, value, quality and idx are written per row.
   */
  sampleRun (who: Uint8Array, label: Uint8Array, t0: number, intervalMs: number, values: readonly number[], from: number, quality: readonly number[] | null,
    duration: number, seq: Uint8Array, idx0: number, grant: Uint8Array, ingestedAt: number): void {
    const n = values.length - from
    if (n <= 0) return
    const first = this.o
    // no closure for the quality: under tsx every call would also wrap it in a naming helper
    const rated = quality === null ? 0 : quality.length
    this.sampleRow(who, label, t0 + from * intervalMs, values[from]!, duration, from < rated ? quality![from]! : 255, seq, idx0 + from, grant, ingestedAt)
    const size = this.o - first
    this.room(size * (n - 1))
    const buf = this.buf
    for (let have = 1; have < n;) {
      const copy = Math.min(have, n - have)
      buf.copyWithin(first + have * size, first, first + copy * size)
      have += copy
    }
    // the fields that differ, at their offsets in the row
    const tsAt = first + who.length + label.length
    const idxAt = tsAt + 8 + 4 + 4 + 1 + seq.length
    const dv = this.dv
    for (let k = 1; k < n; k++) {
      const i = from + k
      const o = tsAt + k * size
      this.putU64(o, t0 + i * intervalMs)
      dv.setFloat32(o + 8, values[i]!, true)
      buf[o + 16] = i < rated ? quality![i]! : 255
      dv.setUint16(idxAt + k * size, idx0 + i, true)
    }
    this.o = first + n * size
  }

  /** Copies a short run of bytes to `o` (room made beforehand); returns the offset after it. */
  private put (b: Uint8Array, o: number): number {
    const buf = this.buf
    // short runs (ids, labels, provenance): a plain loop beats the native copy's call overhead
    for (let i = 0; i < b.length; i++) buf[o++] = b[i]!
    return o
  }

  /** UInt64 / Int64 from a safe integer at `o` (room made beforehand). */
  private putU64 (o: number, v: number): void {
    this.dv.setUint32(o, v % 0x1_0000_0000 >>> 0, true)
    this.dv.setUint32(o + 4, Math.floor(v / 0x1_0000_0000) >>> 0, true)
  }

  u8 (v: number): void { this.room(1); this.buf[this.o++] = v }
  u16 (v: number): void { this.room(2); this.dv.setUint16(this.o, v, true); this.o += 2 }
  u32 (v: number): void { this.room(4); this.dv.setUint32(this.o, v >>> 0, true); this.o += 4 }
  /** UInt64 / Int64 from a safe integer (millisecond times). */
  u64 (v: number): void { this.room(8); this.putU64(this.o, v); this.o += 8 }

  /** UInt64 over its whole range (sequence numbers). */
  u64n (v: bigint): void { this.room(8); this.dv.setBigUint64(this.o, v, true); this.o += 8 }
  /** DateTime64(3): Int64 milliseconds since the epoch. */
  time (ms: number): void { this.u64(ms) }
  f32 (v: number): void { this.room(4); this.dv.setFloat32(this.o, v, true); this.o += 4 }
  f64 (v: number): void { this.room(8); this.dv.setFloat64(this.o, v, true); this.o += 8 }

  nullableF32 (v: number | null | undefined): void { if (v == null) this.u8(1); else { this.u8(0); this.f32(v) } }
  nullableF64 (v: number | null | undefined): void { if (v == null) this.u8(1); else { this.u8(0); this.f64(v) } }
  nullableTime (ms: number | null): void { if (ms === null) this.u8(1); else { this.u8(0); this.time(ms) } }

  strings (items: readonly string[]): void {
    this.varint(items.length)
    for (const s of items) this.string(s)
  }

  /** Map(String, UInt32). */
  countMap (m: Readonly<Record<string, number>>): void {
    const entries = Object.entries(m)
    this.varint(entries.length)
    for (const [k, v] of entries) { this.string(k); this.u32(v) }
  }
}

/** The RowBinary encoding of a run of string fields, to repeat with RowWriter.raw(). */
const scratch = new RowWriter(1024)
export function encodeStrings (...items: string[]): Buffer {
  scratch.reset()
  for (const s of items) scratch.string(s)
  return scratch.take()
}

/**
 * The rows of a device_sequences or device_heads batch (RowBinary: tenant, device, seq UInt64; rows.ts's
 * sequenceRow), in order. False if the batch ends inside a row (the rows before it were given).
 */
export function readSequenceRows (body: Buffer, each: (tenant: string, device: string, seq: bigint) => void): boolean {
  let o = 0
  while (o < body.length) {
    const t = readRowString(body, o)
    const d = t === null ? null : readRowString(body, t[1])
    if (t === null || d === null || d[1] + 8 > body.length) return false
    each(t[0], d[0], body.readBigUInt64LE(d[1]))
    o = d[1] + 8
  }
  return true
}

/** A RowBinary String at `o` of `b`: its text and where the next field starts; null if `b` ends first. */
function readRowString (b: Buffer, o: number): [string, number] | null {
  let len = 0
  let shift = 0
  for (;;) {
    if (o >= b.length) return null
    const byte = b[o++]!
    len += (byte & 0x7f) * 2 ** shift
    if (byte < 0x80) break
    shift += 7
  }
  if (o + len > b.length) return null
  return [b.toString('utf8', o, o + len), o + len]
}
