/**
 * Network listeners feeding aedes: plain TCP (development, loopback by
 * default) and TLS. Every connection passes the packet guard before aedes sees
 * a byte, and each listener caps its open connections.
 */
import { once } from 'node:events'
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { Aedes } from 'aedes'
import { GuardedConnection, type GuardLimits, type GuardViolation } from './packet-guard.ts'
import { TLS_OPTIONS, type TlsMaterial } from './tls.ts'

export interface ListenerSpec { host: string; port: number }
export interface ListenerOptions {
  tcp: ListenerSpec | null
  tls: ListenerSpec
  material: TlsMaterial
  guard: GuardLimits
  maxConnections: number
  onViolation: (v: GuardViolation, remoteAddress: string) => void
}
export interface Listeners {
  tcp: AddressInfo | null
  tls: AddressInfo
  setTls: (m: TlsMaterial) => void
  close: () => Promise<void>
}

async function listen (server: Server, spec: ListenerSpec): Promise<AddressInfo> {
  server.listen(spec.port, spec.host)
  await once(server, 'listening')
  return server.address() as AddressInfo
}

export async function startListeners (aedes: Aedes, opts: ListenerOptions): Promise<Listeners> {
  const accept = (socket: Socket): void => {
    // PUBACKs are small and latency-bound: no Nagle delay waiting for the peer's delayed ACK
    socket.setNoDelay(true)
    const guarded = new GuardedConnection(socket, opts.guard, (v, s) => { opts.onViolation(v, s.remoteAddress ?? '') })
    aedes.handle(guarded)
  }
  const servers: Server[] = []
  let tcp: AddressInfo | null = null
  if (opts.tcp !== null) {
    const s = createTcpServer(accept)
    s.maxConnections = opts.maxConnections
    servers.push(s)
    tcp = await listen(s, opts.tcp)
  }
  const tlsServer = createTlsServer({ ...TLS_OPTIONS, key: opts.material.key, cert: opts.material.cert }, accept)
  tlsServer.maxConnections = opts.maxConnections
  // a failed handshake is the client's problem, never the broker's
  tlsServer.on('tlsClientError', () => {})
  servers.push(tlsServer)
  const tls = await listen(tlsServer, opts.tls)
  return {
    tcp,
    tls,
    setTls: (m) => { tlsServer.setSecureContext({ ...TLS_OPTIONS, key: m.key, cert: m.cert }) },
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => { s.close(() => resolve()) })))
    },
  }
}
