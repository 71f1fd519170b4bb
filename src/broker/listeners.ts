/**
 * Network listeners feeding aedes: plain TCP (development, loopback by
 * default) and TLS. Every connection passes the packet guard before aedes sees
 * a byte, and each listener caps its open connections. Behind a TCP load
 * balancer, connections from its configured addresses start with a PROXY
 * protocol header naming the device's address, which is read first.
 */
import { once } from 'node:events'
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createSecureContext, createServer as createTlsServer, type TLSSocket } from 'node:tls'
import type { Aedes } from 'aedes'
import type { BlockList } from 'node:net'
import { GuardedConnection, type GuardLimits, type GuardViolation } from './packet-guard.ts'
import type { ReadScheduler } from './read-scheduler.ts'
import { onList } from '../addresses.ts'
import { readProxyHeader } from './proxy-protocol.ts'
import { TLS_OPTIONS, type TlsMaterial } from './tls.ts'

export interface ListenerSpec { host: string; port: number }
export interface ListenerOptions {
  tcp: ListenerSpec | null
  tls: ListenerSpec
  /** Mutual TLS: only clients with a certificate from one of `trust` and not on its CA's revocation list in `crl` get in. */
  mtls: (ListenerSpec & { trust: string[]; crl: string[] }) | null
  material: TlsMaterial
  guard: GuardLimits
  /** When bulk connections' data is taken while the node is busy (read-scheduler.ts); none: always at once. */
  reads?: ReadScheduler
  maxConnections: number
  /**
   * A TLS handshake must complete within this; a socket that sends nothing is closed.
   * After it, aedes' connectTimeout bounds the wait for CONNECT.
   */
  handshakeTimeoutMs: number
  /**
   * Load balancers whose connections must begin with a PROXY protocol header (v1 or v2); the
   * address it carries is the connection's for back-off, security events and rejection records.
   * Null: no header is read from anyone.
   */
  proxyFrom: BlockList | null
  /**
   * Keys of TLS session tickets (48 bytes): a device that reconnects with a ticket skips the
   * certificate exchange. Derived from the master key by the node, so tickets survive a restart
   * (after one, every device reconnects at once). Resumed TLS 1.3 sessions still run an ECDHE
   * exchange (psk_dhe_ke), so a leaked ticket key does not open recorded traffic.
   */
  ticketKeys: Buffer
  /** `detail` says what was wrong when it is not the packet guard's finding (a bad PROXY header). */
  onViolation: (v: GuardViolation, remoteAddress: string, detail?: string) => void
}
export interface Listeners {
  tcp: AddressInfo | null
  tls: AddressInfo
  mtls: AddressInfo | null
  /** Swaps the server certificate and key on every TLS listener; open connections keep theirs. */
  setTls: (m: TlsMaterial) => void
  /**
   * Replaces the CAs the mutual-TLS listener trusts and their revocation lists. A list that does not
   * parse changes nothing (the last good ones stay in force) and is reported by throwing.
   */
  setTrust: (cas: string[], crl: string[]) => void
  /** Replaces the session-ticket keys (rotation); tickets under the old keys get a full handshake. */
  setTicketKeys: (keys: Buffer) => void
  close: () => Promise<void>
}

async function listen (server: Server, spec: ListenerSpec): Promise<AddressInfo> {
  server.listen(spec.port, spec.host)
  await once(server, 'listening')
  return server.address() as AddressInfo
}

export async function startListeners (aedes: Aedes, opts: ListenerOptions): Promise<Listeners> {
  const handshakeTimeout = opts.handshakeTimeoutMs
  // the device address a balancer gave, by the balancer's connection (its address and port); a TLS
  // socket reports the same pair as the TCP socket under it. At most one entry per open connection.
  const proxied = new Map<string, string>()
  const pair = (s: Socket): string => `${s.remoteAddress ?? ''}|${s.remotePort ?? ''}`
  const accept = (socket: Socket): void => {
    // PUBACKs are small and latency-bound: no Nagle delay waiting for the peer's delayed ACK
    socket.setNoDelay(true)
    const peer = opts.proxyFrom === null ? undefined : proxied.get(pair(socket))
    const guarded = new GuardedConnection(socket, opts.guard, (v, address) => { opts.onViolation(v, address) }, peer, opts.reads)
    aedes.handle(guarded)
  }
  /** From a trusted balancer the header comes first; from anyone else the connection is taken as it is. */
  const ingress = (next: (s: Socket) => void) => (socket: Socket): void => {
    if (opts.proxyFrom === null || !onList(opts.proxyFrom, socket.remoteAddress)) { next(socket); return }
    const key = pair(socket)
    readProxyHeader(socket, handshakeTimeout).then((header) => {
      if (header.kind === 'proxy') {
        proxied.set(key, header.source.address)
        socket.once('close', () => { proxied.delete(key) })
      }
      next(socket)
    }, (err: unknown) => {
      opts.onViolation('ING_ERR_PROTOCOL', socket.remoteAddress ?? '', `PROXY protocol: ${(err as Error).message}`)
    })
  }
  const listening: Server[] = []
  const front = async (spec: ListenerSpec, next: (s: Socket) => void): Promise<AddressInfo> => {
    const s = createTcpServer(ingress(next))
    s.maxConnections = opts.maxConnections
    listening.push(s)
    return await listen(s, spec)
  }
  let tcp: AddressInfo | null = null
  if (opts.tcp !== null) tcp = await front(opts.tcp, accept)
  // session resumption: the node's ticket keys, and a fixed session id context so a session is accepted by
  // the next process too (Node's default hashes argv). Part of every secure context, so a reload keeps them.
  let ticketKeys = opts.ticketKeys
  const resumption = (context: string): object => ({ ticketKeys, sessionIdContext: context })
  const tlsContext = (m: TlsMaterial): object => ({ ...TLS_OPTIONS, ...resumption('vitalflow-mqtts'), key: m.key, cert: m.cert })
  const tlsServer = createTlsServer({ ...tlsContext(opts.material), handshakeTimeout }, accept)
  // a failed handshake is the client's problem, never the broker's. With a listener
  // here Node leaves the socket to us (a handshake timeout alone closes nothing): close it.
  const dropFailedHandshake = (_err: Error, socket: TLSSocket): void => { socket.destroy() }
  tlsServer.on('tlsClientError', dropFailedHandshake)
  /** A TLS server listens itself, or (behind a balancer) takes the sockets a TCP front has read the header off. */
  const serveTls = async (server: Server, spec: ListenerSpec): Promise<AddressInfo> => {
    if (opts.proxyFrom !== null) return await front(spec, (socket) => { server.emit('connection', socket) })
    server.maxConnections = opts.maxConnections
    listening.push(server)
    return await listen(server, spec)
  }
  const tls = await serveTls(tlsServer, opts.tls)

  let material = opts.material
  let trust = opts.mtls?.trust ?? []
  let crl = opts.mtls?.crl ?? []
  // with a CRL given, OpenSSL checks the leaf certificate against its issuer's list at every full handshake
  // (a resumed session skips it: the registry refuses a revoked device's certificate at CONNECT as well)
  const mutual = (): object => ({
    ...TLS_OPTIONS, ...resumption('vitalflow-mqtts-mtls'), key: material.key, cert: material.cert, ca: trust, requestCert: true, rejectUnauthorized: true,
    ...(crl.length === 0 ? {} : { crl }),
  })
  let mtlsServer: Server | null = null
  let mtls: AddressInfo | null = null
  if (opts.mtls !== null) {
    const s = createTlsServer({ ...mutual(), handshakeTimeout }, accept)
    s.on('tlsClientError', dropFailedHandshake)
    mtlsServer = s
    mtls = await serveTls(s, opts.mtls)
  }
  return {
    tcp,
    tls,
    mtls,
    setTls: (m) => {
      material = m
      tlsServer.setSecureContext(tlsContext(m))
      ;(mtlsServer as ReturnType<typeof createTlsServer> | null)?.setSecureContext(mutual())
    },
    setTrust: (cas, lists) => {
      // checked before anything changes: a list OpenSSL cannot read keeps the last good ones
      createSecureContext({ ca: cas, ...(lists.length === 0 ? {} : { crl: lists }) })
      trust = cas
      crl = lists
      ;(mtlsServer as ReturnType<typeof createTlsServer> | null)?.setSecureContext(mutual())
    },
    setTicketKeys: (keys) => {
      ticketKeys = keys
      tlsServer.setTicketKeys(keys)
      ;(mtlsServer as ReturnType<typeof createTlsServer> | null)?.setTicketKeys(keys)
    },
    close: async () => {
      await Promise.all(listening.map((s) => new Promise<void>((resolve) => { s.close(() => resolve()) })))
    },
  }
}
