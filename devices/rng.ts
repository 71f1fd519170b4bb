/** A small seedable PRNG (mulberry32): device models are reproducible per seed. */
export interface Rng {
  next: () => number
  uniform: (a: number, b: number) => number
  normal: (mean: number, sd: number) => number
  int: (a: number, b: number) => number
  chance: (p: number) => boolean
}

export function createRng (seed: number): Rng {
  let s = seed >>> 0
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    uniform: (a, b) => a + (b - a) * next(),
    normal: (mean, sd) => mean + sd * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
    int: (a, b) => a + Math.floor(next() * (b - a + 1)),
    chance: (p) => next() < p,
  }
}

export function clamp (v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v
}

export const round1 = (v: number): number => Math.round(v * 10) / 10
