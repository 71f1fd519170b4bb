/**
 * TLS listener hygiene over real sockets: a connection that never finishes its
 * handshake (or never sends CONNECT after it) is closed by the server, and a
 * TLS 1.2 client cannot renegotiate, on the TLS and the mutual-TLS listener.
 */
import { once } from 'node:events'
import { connect as tcpConnect } from 'node:net'
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let deviceCert: { key: string; cert: string }

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path, { TLS_HANDSHAKE_TIMEOUT_MS: 500 })
  await node.registry.createTenant('care-r', 'R')
  await node.registry.enrollDevice({ tenant: 'care-r', device: 'cal-r1', family: 'calarm', patient: null })
  const issued = await node.registry.issueCertificate('care-r', 'cal-r1')
  deviceCert = { key: issued.keyPem!, cert: issued.certPem }
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

/** Resolves once the server closes a socket that sends nothing (no timeout of our own: the test's timeout is the bound). */
async function closedByServer (port: number): Promise<true> {
  const s = tcpConnect({ host: '127.0.0.1', port })
  s.on('error', () => {})
  s.resume()
  await once(s, 'close')
  return true
}

/** A completed TLS 1.2 handshake, then a client-initiated renegotiation: 'renegotiated' or how it was refused. */
async function renegotiate (port: number, opts: ConnectionOptions = {}): Promise<string> {
  const s: TLSSocket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: node.caPem, maxVersion: 'TLSv1.2', ...opts })
  try {
    await once(s, 'secureConnect')
    expect(s.getProtocol()).toBe('TLSv1.2')
    return await new Promise<string>((resolve) => {
      s.once('error', (e: NodeJS.ErrnoException) => { resolve(`refused: ${e.code ?? e.message}`) })
      s.once('close', () => { resolve('refused: closed') })
      const started = s.renegotiate({ rejectUnauthorized: true }, (err) => { resolve(err == null ? 'renegotiated' : `refused: ${(err as NodeJS.ErrnoException).code ?? err.message}`) })
      if (!started) resolve('refused: not started')
    })
  } finally {
    s.destroy()
  }
}

describe('TLS handshake timeout', () => {
  it('closes a TCP connection to the TLS listeners that never starts a handshake', async () => {
    expect(await Promise.all([closedByServer(node.mqtts.port), closedByServer(node.mqttsMutual!.port)])).toEqual([true, true])
  }, 20_000)

  it('closes a connection that completes TLS but never sends CONNECT (aedes connectTimeout)', async () => {
    const silentAfterTls = async (port: number, opts: ConnectionOptions): Promise<true> => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: node.caPem, ...opts })
      s.on('error', () => {})
      await once(s, 'secureConnect')
      s.resume()
      await once(s, 'close')
      return true
    }
    expect(await Promise.all([silentAfterTls(node.mqtts.port, {}), silentAfterTls(node.mqttsMutual!.port, deviceCert)])).toEqual([true, true])
  }, 40_000)
})

describe('TLS renegotiation', () => {
  it('refuses a client-initiated renegotiation on the TLS listener, also after a certificate reload', async () => {
    expect(await renegotiate(node.mqtts.port)).toMatch(/^refused/)
    node.reloadTls()
    expect(await renegotiate(node.mqtts.port)).toMatch(/^refused/)
  })

  it('refuses a client-initiated renegotiation on the mutual-TLS listener', async () => {
    expect(await renegotiate(node.mqttsMutual!.port, deviceCert)).toMatch(/^refused/)
  })
})
