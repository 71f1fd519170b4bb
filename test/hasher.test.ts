/** The hash worker pool: same hash format as before, bounded concurrency and queue, off the main thread. */
import { randomBytes, scryptSync } from 'node:crypto'
import { threadId } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { createHasher, hashSecret, HasherBusyError, HasherClosedError, placeholderHash, verifySecret, type Hasher } from '../src/registry/index.ts'

let hasher: Hasher | undefined
afterEach(async () => { await hasher?.close() })

describe('hasher', () => {
  it('verifies hashes in the stored format (scrypt$N$r$p$salt$key) and makes ones plain scrypt verifies', async () => {
    hasher = createHasher({ threads: 1, maxQueue: 4 })
    const salt = randomBytes(16)
    const stored = `scrypt$1024$8$1$${salt.toString('base64url')}$${scryptSync('s3cret', salt, 32, { N: 1024, r: 8, p: 1 }).toString('base64url')}`
    expect(await verifySecret(hasher, 's3cret', stored)).toBe(true)
    expect(await verifySecret(hasher, 'wrong', stored)).toBe(false)
    const made = await hashSecret(hasher, 'other', 10)
    const [, n, r, p, s, k] = made.split('$')
    expect([n, r, p]).toEqual(['1024', '8', '1'])
    expect(scryptSync('other', Buffer.from(s!, 'base64url'), 32, { N: 1024, r: 8, p: 1 }).toString('base64url')).toBe(k)
    expect(hasher.stats().computedOn).not.toContain(threadId)
  })

  it('a placeholder hash matches nothing and costs a real check', async () => {
    hasher = createHasher({ threads: 1, maxQueue: 4 })
    const before = hasher.stats().completed
    expect(await verifySecret(hasher, 'anything', placeholderHash(10))).toBe(false)
    expect(hasher.stats().completed).toBe(before + 1)
  })

  it('runs at most `threads` at once, queues at most maxQueue bounded checks and refuses the rest at once; unbounded work waits', async () => {
    hasher = createHasher({ threads: 2, maxQueue: 3 })
    const stored = placeholderHash(12)
    const checks = await Promise.allSettled(Array.from({ length: 20 }, async () => await verifySecret(hasher!, 'x', stored)))
    const refused = checks.filter((c) => c.status === 'rejected')
    expect(checks.length - refused.length).toBe(5) // 2 running + 3 waiting
    expect(refused.every((c) => c.reason instanceof HasherBusyError && c.reason.code === 'ING_ERR_AUTH_BUSY')).toBe(true)
    const made = await Promise.all(Array.from({ length: 8 }, async () => await hashSecret(hasher!, 'y', 10)))
    expect(made).toHaveLength(8)
    const stats = hasher.stats()
    expect(stats).toMatchObject({ threads: 2, maxInFlight: 2, inFlight: 0, queued: 0, refused: 15, completed: 13 })
    expect(stats.computedOn).toHaveLength(2)
  })

  it('close refuses what waits and what comes later', async () => {
    hasher = createHasher({ threads: 1, maxQueue: 10 })
    const stored = placeholderHash(14)
    const settled = Promise.allSettled(Array.from({ length: 3 }, async () => await verifySecret(hasher!, 'x', stored)))
    await hasher.close()
    const out = await settled
    expect(out.every((o) => o.status === 'rejected')).toBe(true)
    await expect(verifySecret(hasher, 'x', stored)).rejects.toBeInstanceOf(HasherClosedError)
  })
})
