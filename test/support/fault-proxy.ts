/**
 * A TCP fault proxy for tests: sits between clients and a server on loopback
 * and injects latency, stalls, connection resets and black holes. Used between
 * devices and the broker here, and usable between the pipeline and a
 * ClickHouse server in server mode.
 */
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'

export interface Faults {
  /** Added delay per chunk, each direction. */
  latencyMs: number
  /** While true, bytes are held (not dropped) until the stall ends. */
  stalled: boolean
  /** While true, new bytes vanish and connections hang (a black hole). */
  blackhole: boolean
}

export interface FaultProxy {
  port: number
  faults: Faults
  /** Resets every open connection (RST), as a flaky network or a crashed middlebox would. */
  resetAll: () => void
  connections: () => number
  close: () => Promise<void>
}

export async function startFaultProxy (target: { host: string; port: number }, initial: Partial<Faults> = {}): Promise<FaultProxy> {
  const faults: Faults = { latencyMs: 0, stalled: false, blackhole: false, ...initial }
  const open = new Set<Socket>()
  const held: Array<() => void> = []
  const pipe = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (faults.blackhole) return
      const send = (): void => { if (!to.destroyed) to.write(chunk) }
      const deliver = (): void => { if (faults.latencyMs > 0) setTimeout(send, faults.latencyMs); else send() }
      if (faults.stalled) held.push(deliver)
      else deliver()
    })
  }
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    for (const s of [client, upstream]) {
      open.add(s)
      s.on('error', () => {})
      s.on('close', () => { open.delete(s); client.destroy(); upstream.destroy() })
    }
    pipe(client, upstream)
    pipe(upstream, client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    faults: new Proxy(faults, {
      set (t, k: keyof Faults, v) {
        (t as unknown as Record<string, unknown>)[k] = v
        if (k === 'stalled' && v === false) for (const f of held.splice(0)) f()
        return true
      },
    }),
    resetAll: () => { for (const s of open) s.resetAndDestroy() },
    connections: () => open.size / 2,
    close: async () => {
      for (const s of open) s.destroy()
      await new Promise<void>((resolve) => { server.close(() => resolve()) })
    },
  }
}
