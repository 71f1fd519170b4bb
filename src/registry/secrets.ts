/** Device secrets: random, shown once at enrollment, stored only as an scrypt hash. */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

const R = 8
const P = 1

function scryptAsync (secret: string, salt: Buffer, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, 32, { N: n, r: R, p: P, maxmem: 256 * n * R }, (err, key) => { if (err) reject(err); else resolve(key) })
  })
}

export function newSecret (): string {
  return randomBytes(24).toString('base64url')
}

export async function hashSecret (secret: string, cost: number): Promise<string> {
  const salt = randomBytes(16)
  const n = 2 ** cost
  const key = await scryptAsync(secret, salt, n)
  return `scrypt$${n}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

export async function verifySecret (secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const n = Number(parts[1])
  if (!Number.isInteger(n) || n < 2 || n > 2 ** 20 || Number(parts[2]) !== R || Number(parts[3]) !== P) return false
  const expected = Buffer.from(parts[5]!, 'base64url')
  const key = await scryptAsync(secret, Buffer.from(parts[4]!, 'base64url'), n)
  return key.length === expected.length && timingSafeEqual(key, expected)
}
