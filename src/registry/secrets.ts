/**
 * Device secrets and user passwords, stored only as hashes.
 *
 * A user password is chosen by a person: it is hashed with scrypt (slow on
 * purpose), on the hasher's worker threads (see hasher.ts), never on libuv's pool.
 *
 * A device secret is 256 random bits we generate and show once at enrolment.
 * Nobody can guess it, so a slow hash protects nothing extra while costing a
 * core per ~40 connects (a fleet reconnecting after a restart waited minutes).
 * It is stored as HMAC-SHA-256 under a pepper derived from the master key (kept
 * where the master key is kept, never in the store): a stolen copy of the store
 * alone cannot check a guess. The device id is in the MAC, so a hash copied to
 * another device's row matches nothing. Secrets stored as scrypt by earlier
 * versions are checked as before, once, and replaced by the keyed hash on that
 * successful CONNECT.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Hasher } from './hasher.ts'

const R = 8
const P = 1
const KEYLEN = 32

/** A device secret: 256 random bits, base64url (43 characters). */
export function newSecret (): string {
  return randomBytes(32).toString('base64url')
}

const KEYED = 'hmac-sha256$'

/** The key of device-secret MACs, derived from the master key (one master key, one thing to guard). */
export function devicePepper (masterKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'vitalflow device-secret pepper v1', 32))
}

function mac (pepper: Buffer, device: string, secret: string): Buffer {
  return createHmac('sha256', pepper).update(device).update('\0').update(secret).digest()
}

/** What a device row stores for a secret. */
export function deviceSecretHash (pepper: Buffer, device: string, secret: string): string {
  return KEYED + mac(pepper, device, secret).toString('base64url')
}

export function isKeyedHash (stored: string): boolean {
  return stored.startsWith(KEYED)
}

/**
 * Checks a secret against a keyed hash in constant time (a few microseconds, on the calling
 * thread). A malformed stored value matches nothing but costs the same.
 */
export function verifyDeviceSecret (pepper: Buffer, device: string, secret: string, stored: string): boolean {
  const got = mac(pepper, device, secret)
  const expected = isKeyedHash(stored) ? Buffer.from(stored.slice(KEYED.length), 'base64url') : Buffer.alloc(0)
  if (expected.length !== got.length) {
    timingSafeEqual(got, got) // the same work as a comparison, and no match
    return false
  }
  return timingSafeEqual(got, expected)
}

/** Hashes a new password (account creation): waits for a thread however long the queue. */
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
