/**
 * Replay marks shared over a real redis-server (Debian): kept while Redis is out
 * of reach, written when it is back, and counted as waiting until Redis has
 * answered the write (a node that says "nothing waiting" while the write is in
 * flight lets another node take the frame as new).
 */
import { afterAll, beforeAll, describe, expect } from 'vitest'
import { Redis } from 'ioredis'
import { createReplayMarks } from '../src/cluster/replay-marks.ts'
import { startRedis, type RedisServer } from './support/redis.ts'
import { requireTool } from './support/tools.ts'

const withRedis = requireTool('redis-server')

let redis: RedisServer
let client: Redis

beforeAll(async () => {
  redis = await startRedis()
  client = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(50 * n, 200) })
  client.on('error', () => {})
  while (client.status !== 'ready') await new Promise((resolve) => setTimeout(resolve, 20))
})

afterAll(async () => {
  client?.disconnect()
  await redis?.stop()
})

describe('replay marks', () => {
  withRedis('are written at once while Redis is up, kept while it is not, and waiting until the flush\'s write has answered', async () => {
    let up = true
    const marks = createReplayMarks(client, () => up)
    await marks.commit('dev-a', 7n)
    await marks.commit('dev-a', 2n ** 64n - 1n)
    expect(await marks.load('dev-a')).toEqual([7n, 2n ** 64n - 1n])
    expect(marks.pending()).toBe(0)

    up = false
    await marks.commit('dev-a', 8n)
    await marks.commit('dev-b', 1n)
    expect(marks.pending()).toBe(2)
    expect(await marks.load('dev-a')).toBeNull() // the login that needs them is refused (join.ts)
    expect(await client.zrange('vf:seq:dev-b', 0, -1)).toEqual([])

    up = true
    const flushed = marks.flush()
    // the write is on its way, not answered: both marks still count as waiting
    expect(marks.pending()).toBe(2)
    await flushed
    expect(marks.pending()).toBe(0)
    expect(await marks.load('dev-a')).toEqual([7n, 8n, 2n ** 64n - 1n])
    expect(await marks.load('dev-b')).toEqual([1n])
  })

  withRedis('a flush whose write fails keeps the marks for the next one', async () => {
    const marks = createReplayMarks(client, () => true)
    const port = redis.port
    await redis.stop()
    await marks.commit('dev-c', 3n) // the link is not yet known to be down: the write fails and the mark is kept
    expect(marks.pending()).toBe(1)
    await marks.flush()
    expect(marks.pending()).toBe(1)
    redis = await startRedis(port)
    while (client.status !== 'ready') await new Promise((resolve) => setTimeout(resolve, 20))
    await marks.flush()
    expect(marks.pending()).toBe(0)
    expect(await marks.load('dev-c')).toEqual([3n])
  })
})
