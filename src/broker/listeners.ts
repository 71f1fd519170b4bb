/** Network listeners feeding aedes: plain TCP (development, loopback by default) and TLS. */
import { once } from 'node:events'
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { Aedes } from 'aedes'
import { TLS_OPTIONS, type TlsMaterial } from './tls.ts'

export interface ListenerSpec { host: string; port: number }
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

export async function startListeners (aedes: Aedes, opts: { tcp: ListenerSpec | null; tls: ListenerSpec; material: TlsMaterial }): Promise<Listeners> {
  const servers: Server[] = []
  let tcp: AddressInfo | null = null
  if (opts.tcp !== null) {
    const s = createTcpServer(aedes.handle)
    servers.push(s)
    tcp = await listen(s, opts.tcp)
  }
  const tlsServer = createTlsServer({ ...TLS_OPTIONS, key: opts.material.key, cert: opts.material.cert }, aedes.handle)
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
