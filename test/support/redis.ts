/** A real redis-server (Debian) on a free loopback port, no persistence, for tests of several nodes. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'

export async function freePort (): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as { port: number }).port
  s.close()
  await once(s, 'close')
  return port
}

export interface RedisServer { port: number; url: string; proc: ChildProcess; stop: () => Promise<void> }

export async function startRedis (port?: number): Promise<RedisServer> {
  const p = port ?? await freePort()
  const proc = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${p}`
  // ready once it answers PING
  for (;;) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    c.on('error', () => {})
    try {
      await c.connect()
      await c.ping()
      c.disconnect()
      break
    } catch {
      c.disconnect()
      if (proc.exitCode !== null) throw new Error('redis-server exited')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return {
    port: p, url, proc,
    stop: async () => {
      if (proc.exitCode !== null) return
      proc.kill('SIGKILL')
      await once(proc, 'exit')
    },
  }
}
