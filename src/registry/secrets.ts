/**
 * Device secrets and user passwords: random secrets shown once at enrolment,
 * stored only as an scrypt hash. The hashing itself runs on the hasher's
 * worker threads (see hasher.ts), never on libuv's pool.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { Hasher } from './hasher.ts'

const R = 8
const P = 1
const KEYLEN = 32

export function newSecret (): string {
  return randomBytes(24).toString('base64url')
}

/** Hashes a new secret (enrolment, account creation): waits for a thread however long the queue. */
export async function hashSecret (hasher: Hasher, secret: string, cost: number): Promise<string> {
  const salt = randomBytes(16)
  const n = 2 ** cost
  const key = await hasher.scrypt(secret, salt, { N: n, r: R, p: P, keylen: KEYLEN }, false)
  return `scrypt$${n}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/**
 * A well-formed hash at `cost` that no secret matches (random salt and key):
 * checking a secret against it costs exactly what a real check costs, so an
 * unknown identity takes as long as a known one, without hashing anything.
 */
export function placeholderHash (cost: number): string {
  return `scrypt$${2 ** cost}$${R}$${P}$${randomBytes(16).toString('base64url')}$${randomBytes(KEYLEN).toString('base64url')}`
}

/** Checks a secret; a bounded job, so it rejects with HasherBusyError when the hasher's queue is full. */
export async function verifySecret (hasher: Hasher, secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const n = Number(parts[1])
  if (!Number.isInteger(n) || n < 2 || n > 2 ** 20 || Number(parts[2]) !== R || Number(parts[3]) !== P) return false
  const expected = Buffer.from(parts[5]!, 'base64url')
  const key = await hasher.scrypt(secret, Buffer.from(parts[4]!, 'base64url'), { N: n, r: R, p: P, keylen: KEYLEN }, true)
  return key.length === expected.length && timingSafeEqual(key, expected)
}
