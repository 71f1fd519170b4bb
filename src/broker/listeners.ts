/**
 * Network listeners feeding aedes: plain TCP (development, loopback by
 * default) and TLS. Every connection passes the packet guard before aedes sees
 * a byte, and each listener caps its open connections.
 */
import { once } from 'node:events'
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import type { Aedes } from 'aedes'
import { GuardedConnection, type GuardLimits, type GuardViolation } from './packet-guard.ts'
import { TLS_OPTIONS, type TlsMaterial } from './tls.ts'

export interface ListenerSpec { host: string; port: number }
export interface ListenerOptions {
  tcp: ListenerSpec | null
  tls: ListenerSpec
  /** Mutual TLS: only clients with a certificate from one of `trust` get in. */
  mtls: (ListenerSpec & { trust: string[] }) | null
  material: TlsMaterial
  guard: GuardLimits
  maxConnections: number
  /**
   * A TLS handshake must complete within this; a socket that sends nothing is closed.
   * After it, aedes' connectTimeout bounds the wait for CONNECT.
   */
  handshakeTimeoutMs: number
  onViolation: (v: GuardViolation, remoteAddress: string) => void
}
export interface Listeners {
  tcp: AddressInfo | null
  tls: AddressInfo
  mtls: AddressInfo | null
  /** Swaps the server certificate and key on every TLS listener; open connections keep theirs. */
  setTls: (m: TlsMaterial) => void
  /** Replaces the CAs the mutual-TLS listener trusts. */
  setTrust: (cas: string[]) => void
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
  const handshakeTimeout = opts.handshakeTimeoutMs
  const tlsServer = createTlsServer({ ...TLS_OPTIONS, handshakeTimeout, key: opts.material.key, cert: opts.material.cert }, accept)
  tlsServer.maxConnections = opts.maxConnections
  // a failed handshake is the client's problem, never the broker's. With a listener
  // here Node leaves the socket to us (a handshake timeout alone closes nothing): close it.
  const dropFailedHandshake = (_err: Error, socket: TLSSocket): void => { socket.destroy() }
  tlsServer.on('tlsClientError', dropFailedHandshake)
  servers.push(tlsServer)
  const tls = await listen(tlsServer, opts.tls)

  let material = opts.material
  let trust = opts.mtls?.trust ?? []
  const mutual = (): object => ({ ...TLS_OPTIONS, key: material.key, cert: material.cert, ca: trust, requestCert: true, rejectUnauthorized: true })
  let mtlsServer: Server | null = null
  let mtls: AddressInfo | null = null
  if (opts.mtls !== null) {
    const s = createTlsServer({ ...mutual(), handshakeTimeout }, accept)
    s.maxConnections = opts.maxConnections
    s.on('tlsClientError', dropFailedHandshake)
    servers.push(s)
    mtlsServer = s
    mtls = await listen(s, opts.mtls)
  }
  return {
    tcp,
    tls,
    mtls,
    setTls: (m) => {
      material = m
      tlsServer.setSecureContext({ ...TLS_OPTIONS, key: m.key, cert: m.cert })
      ;(mtlsServer as ReturnType<typeof createTlsServer> | null)?.setSecureContext(mutual())
    },
    setTrust: (cas) => {
      trust = cas
      ;(mtlsServer as ReturnType<typeof createTlsServer> | null)?.setSecureContext(mutual())
    },
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => { s.close(() => resolve()) })))
    },
  }
}
