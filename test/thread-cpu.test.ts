/**
 * The per-thread CPU that /metrics reports (src/api/thread-cpu.ts) is read in a worker thread of its
 * own: a scrape puts no request in libuv's pool, where the write-ahead log's writes wait, and no
 * stat-file reads on the event loop. Real /proc of this process (Linux only).
 */
import { describe, expect, it } from 'vitest'
import { threadCpuSeconds, threadCpuSecondsAsync } from '../src/api/thread-cpu.ts'

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
})
