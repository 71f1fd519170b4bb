/**
 * Per-device sliding replay window over sequence numbers (RFC 4303 §3.4.3
 * style): accepts a sequence number once, tolerates reordering up to SIZE
 * behind the highest seen, refuses anything older or already seen.
 */
export const WINDOW_SIZE = 1024
const WORDS = WINDOW_SIZE / 32

export class ReplayWindow {
  /** Highest sequence number accepted so far; -1 before the first. */
  high = -1
  /** bit i set = sequence (high - i) was accepted. */
  private readonly bits = new Uint32Array(WORDS)

  /**
   * A window as it stood before a restart: everything above `high` is new; below
   * it, only the listed numbers (those stored) count as seen, so a message that
   * was in flight but never stored is still accepted when the device resends it.
   */
  static restore (high: number, seen: Iterable<number>): ReplayWindow {
    const w = new ReplayWindow()
    w.accept(high)
    for (const s of seen) if (s <= high && high - s < WINDOW_SIZE) w.accept(s)
    return w
  }

  /** True if seq would be accepted now (does not record it). */
  check (seq: number): boolean {
    if (!Number.isSafeInteger(seq) || seq < 0) return false
    if (seq > this.high) return true
    const back = this.high - seq
    if (back >= WINDOW_SIZE) return false
    return (this.bits[back >>> 5]! & (1 << (back & 31))) === 0
  }

  /** Records seq as seen. Call only after check(seq) returned true. */
  accept (seq: number): void {
    if (seq > this.high) {
      const shift = this.high < 0 ? WINDOW_SIZE : seq - this.high
      this.shift(shift)
      this.high = seq
      this.bits[0] = this.bits[0]! | 1
      return
    }
    const back = this.high - seq
    this.bits[back >>> 5] = this.bits[back >>> 5]! | (1 << (back & 31))
  }

  /**
   * Forgets an accepted seq whose processing failed before it was made
   * durable, so the device's resend is accepted. No-op if it left the window.
   */
  forget (seq: number): void {
    if (seq > this.high) return
    const back = this.high - seq
    if (back >= WINDOW_SIZE) return
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
