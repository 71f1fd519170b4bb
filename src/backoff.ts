/**
 * Exponential back-off, the one formula every retry loop uses: the wait
 * before retry `attempt` (1 = the first) is baseMs · 2^(attempt−1), capped at
 * maxMs. With `random` (a source of [0, 1)) the wait is spread over
 * [½, 1½) of that, so many clients failing at once do not retry in step.
 */
export interface Backoff { baseMs: number; maxMs: number }

export function backoffMs (attempt: number, b: Backoff, random?: () => number): number {
  const wait = Math.min(b.maxMs, b.baseMs * 2 ** (Math.max(1, attempt) - 1))
  return random === undefined ? wait : Math.round(wait * (0.5 + random()))
}
