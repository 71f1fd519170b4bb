/**
 * ClickHouse RowBinary encoding for the batcher: little-endian numbers,
 * strings as LEB128 length + UTF-8, Nullable as a 0/1 byte before the value,
 * DateTime64(3) as Int64 milliseconds. One growable buffer per encoding call;
 * the caller takes a copy of what a message wrote.
 */
export class RowWriter {
  private buf = Buffer.allocUnsafe(64 * 1024)
  private o = 0

  reset (): void { this.o = 0 }
  get length (): number { return this.o }
  /** A copy of everything written since reset(). */
  take (): Buffer { return Buffer.from(this.buf.subarray(0, this.o)) }

  private room (n: number): void {
    if (this.o + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.o + n))
    this.buf.copy(next, 0, 0, this.o)
    this.buf = next
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

  u8 (v: number): void { this.room(1); this.buf[this.o++] = v }
  u16 (v: number): void { this.room(2); this.o = this.buf.writeUInt16LE(v, this.o) }
  u32 (v: number): void { this.room(4); this.o = this.buf.writeUInt32LE(v >>> 0, this.o) }
  /** UInt64 / Int64 from a safe integer (sequence numbers, millisecond times). */
  u64 (v: number): void {
    this.room(8)
    this.buf.writeUInt32LE(v % 0x1_0000_0000 >>> 0, this.o)
    this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000) >>> 0, this.o + 4)
    this.o += 8
  }
  /** DateTime64(3): Int64 milliseconds since the epoch. */
  time (ms: number): void { this.u64(ms) }
  f32 (v: number): void { this.room(4); this.o = this.buf.writeFloatLE(v, this.o) }
  f64 (v: number): void { this.room(8); this.o = this.buf.writeDoubleLE(v, this.o) }

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
