import { endianness } from 'node:os'

/**
 * Per-device sliding replay window over sequence numbers (RFC 4303 §3.4.3
 * style): accepts a sequence number once, tolerates reordering up to SIZE
 * behind the highest seen, refuses anything older or already seen.
 *
 * Sequence numbers are uint64 (0 .. 2^64 - 1), held as bigint so that every one
 * is exact; a number is accepted too when it is a safe integer.
 */
export const WINDOW_SIZE = 1024
const WORDS = WINDOW_SIZE / 32
const SIZE = BigInt(WINDOW_SIZE)
const MAX = 0xffff_ffff_ffff_ffffn

export type SeqLike = bigint | number
const LITTLE_ENDIAN = endianness() === 'LE'

/** The sequence number as a bigint, or null when it is not a uint64. */
function asSeq (seq: SeqLike): bigint | null {
  if (typeof seq === 'bigint') return seq >= 0n && seq <= MAX ? seq : null
  return Number.isSafeInteger(seq) && seq >= 0 ? BigInt(seq) : null
}

export class ReplayWindow {
  /** Highest sequence number accepted so far; -1n before the first. */
  high = -1n
  /** bit i set = sequence (high - i) was accepted. */
  private readonly bits = new Uint32Array(WORDS)

  /**
   * A window as it stood before a restart: everything above `high` is new; below
   * it, only the listed numbers (those stored) count as seen, so a message that
   * was in flight but never stored is still accepted when the device resends it.
   */
  static restore (high: SeqLike, seen: Iterable<SeqLike>): ReplayWindow {
    const w = new ReplayWindow()
    const h = asSeq(high)
    if (h === null) return w
    w.accept(h)
    for (const s of seen) {
      const q = asSeq(s)
      if (q !== null && q <= h && h - q < SIZE) w.accept(q)
    }
    return w
  }

  /**
   * A window closed at `high`: everything at or below it counts as seen. What a restart falls back to
   * when it knows only the highest stored number of a device (its head), not which below it were stored.
   */
  static closedAt (high: SeqLike): ReplayWindow {
    const w = new ReplayWindow()
    const h = asSeq(high)
    if (h === null) return w
    w.high = h
    w.bits.fill(0xffff_ffff)
    return w
  }

  /** The window as bytes (BYTES of them): the highest number (uint64, little-endian), then the bits. */
  write (out: Buffer, offset: number): void {
    out.writeBigUInt64LE(this.high < 0n ? 0n : this.high, offset)
    // the words as they are in memory where that is little-endian (one copy: a file of 10,000 windows is
    // encoded in 3.8 ms instead of 5.8 on the event loop)
    if (LITTLE_ENDIAN) out.set(new Uint8Array(this.bits.buffer, this.bits.byteOffset, 4 * WORDS), offset + 8)
    else for (let i = 0; i < WORDS; i++) out.writeUInt32LE(this.bits[i]!, offset + 8 + 4 * i)
  }

  /** A window written by write() (of one that had accepted a number). */
  static read (from: Buffer, offset: number): ReplayWindow {
    const w = new ReplayWindow()
    w.high = from.readBigUInt64LE(offset)
    for (let i = 0; i < WORDS; i++) w.bits[i] = from.readUInt32LE(offset + 8 + 4 * i)
    return w
  }

  /** Bytes a window takes in write(). */
  static readonly BYTES = 8 + 4 * WORDS

  /** Records as seen every number `other` has seen (within this window once joined). */
  join (other: ReplayWindow): void {
    if (other.high < 0n) return
    // from the highest down: this.accept moves the window at most once, at the first
    for (let i = 0; i < WINDOW_SIZE; i++) {
      const s = other.high - BigInt(i)
      if (s < 0n) break
      if ((other.bits[i >>> 5]! & (1 << (i & 31))) !== 0) this.accept(s)
    }
  }

  clone (): ReplayWindow {
    const w = new ReplayWindow()
    w.high = this.high
    w.bits.set(this.bits)
    return w
  }

  /** True if seq would be accepted now (does not record it). */
  check (seq: SeqLike): boolean {
    const s = asSeq(seq)
    if (s === null) return false
    if (s > this.high) return true
    const back = this.high - s
    if (back >= SIZE) return false
    const b = Number(back)
    return (this.bits[b >>> 5]! & (1 << (b & 31))) === 0
  }

  /** Records seq as seen. Call only after check(seq) returned true. */
  accept (seq: SeqLike): void {
    const s = asSeq(seq)
    if (s === null) return
    if (s > this.high) {
      const ahead = s - this.high
      this.shift(this.high < 0n || ahead >= SIZE ? WINDOW_SIZE : Number(ahead))
      this.high = s
      this.bits[0] = this.bits[0]! | 1
      return
    }
    const back = this.high - s
    if (back >= SIZE) return // older than the window: refused by check() already
    const b = Number(back)
    this.bits[b >>> 5] = this.bits[b >>> 5]! | (1 << (b & 31))
  }

  /**
   * Forgets an accepted seq whose processing failed before it was made
   * durable, so the device's resend is accepted. No-op if it left the window.
   */
  forget (seq: SeqLike): void {
    const s = asSeq(seq)
    if (s === null || s > this.high) return
    const diff = this.high - s
    if (diff >= SIZE) return
    const back = Number(diff)
    this.bits[back >>> 5] = this.bits[back >>> 5]! & ~(1 << (back & 31))
  }

  private shift (n: number): void {
    if (n >= WINDOW_SIZE) { this.bits.fill(0); return }
    const words = n >>> 5
    const bitsN = n & 31
    for (let i = WORDS - 1; i >= 0; i--) {
      const src = i - words
      let v = src >= 0 ? (this.bits[src]! << bitsN) >>> 0 : 0
      if (bitsN !== 0 && src - 1 >= 0) v |= this.bits[src - 1]! >>> (32 - bitsN)
      this.bits[i] = v
    }
  }
}
