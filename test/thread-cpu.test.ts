/**
 * The per-thread CPU that /metrics reports (src/api/thread-cpu.ts) is read in a worker thread of its
 * own: a scrape puts no request in libuv's pool, where the write-ahead log's writes wait, and no
 * stat-file reads on the event loop. Real /proc of this process (Linux only).
 */
import { pbkdf2 } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { readlink } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { nameThreadPool, POOL_THREAD_NAME, threadCpuSeconds, threadCpuSecondsAsync } from '../src/api/thread-cpu.ts'

const fsRequests = (): string[] => process.getActiveResourcesInfo().filter((r) => r.startsWith('FSReq'))

describe.runIf(process.platform === 'linux')('thread CPU for /metrics', () => {
  it('is read off the event loop and libuv\'s pool, and agrees with a direct read', async () => {
    // burn some CPU on this thread, so that `main` is well above zero
    const until = performance.now() + 300
    let x = 0
    while (performance.now() < until) x += Math.sqrt(x + 1)
    expect(x).toBeGreaterThan(0)
    const before = threadCpuSeconds()
    const reads = Array.from({ length: 4 }, () => threadCpuSecondsAsync())
    expect(fsRequests()).toEqual([])
    const got = await Promise.all(reads)
    const after = threadCpuSeconds()
    for (const g of got) {
      expect(g['main']).toBeGreaterThanOrEqual(before['main']!)
      expect(g['main']).toBeLessThanOrEqual(after['main']!)
      expect(g['main']).toBeGreaterThan(0.2)
      // the same threads by name, less any that started or ended in between (the reader itself among them)
      for (const name of Object.keys(before)) if (name !== 'main' && after[name] !== undefined) expect(g[name]).toBeDefined()
    }
  })

  it('names every thread of libuv\'s pool, and the pool\'s work is counted under that name', async () => {
    const named = await nameThreadPool()
    const size = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4)
    const byName = (): string[] => readdirSync('/proc/self/task').filter((tid) => {
      try { return readFileSync(`/proc/self/task/${tid}/comm`, 'latin1').trim() === POOL_THREAD_NAME } catch { return false }
    })
    expect(named.length).toBe(size)
    expect(byName().sort()).toEqual([...named].sort())
    // whatever pool thread answers now is one of those named
    for (const link of await Promise.all(Array.from({ length: 16 }, async () => await readlink('/proc/thread-self')))) {
      expect(named).toContain(link.slice(link.lastIndexOf('/') + 1))
    }
    // work in the pool (pbkdf2 runs there) shows up as libuv-pool CPU
    const before = threadCpuSeconds()[POOL_THREAD_NAME] ?? 0
    await Promise.all(Array.from({ length: size }, async () => await new Promise((resolve, reject) => { pbkdf2('k', 's', 300_000, 32, 'sha512', (err, key) => { if (err) reject(err); else resolve(key) }) })))
    expect((threadCpuSeconds()[POOL_THREAD_NAME] ?? 0) - before).toBeGreaterThan(0.2)
  })
})
