/**
 * Transport security over real sockets: TLS versions and suites, mutual TLS
 * with per-tenant device certificates, a client we did not write (Debian's
 * mosquitto_pub), and certificate reload without a restart.
 */
import { execFile, execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions } from 'node:tls'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { CertificateAuthorities, type Enrollment } from '../src/registry/index.ts'
import { count, startTestNode, tempDir } from './support/node.ts'
import { requireTool } from './support/tools.ts'

const run = promisify(execFile)
let dir: ReturnType<typeof tempDir>
let node: IngestNode
let rsa: { key: string; cert: string }
let dev: Enrollment
let other: Enrollment
const alarms = createAlarmModel(4)
const withMosquitto = requireTool('mosquitto_pub')

/** Resolves 'ok' after a completed handshake, or the error that ended it. */
async function handshake (port: number, opts: ConnectionOptions): Promise<string> {
  const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...opts })
  return await new Promise((resolve) => {
    s.once('secureConnect', () => { resolve(`ok ${s.getProtocol()} ${s.getCipher().name}`); s.destroy() })
    s.once('error', (e: Error) => { resolve(`refused: ${e.message}`) })
    s.once('close', () => { resolve('refused: closed') })
  })
}

beforeAll(async () => {
  dir = tempDir()
  // an RSA server certificate, as an operator might bring one (VF_TLS_CERT/VF_TLS_KEY)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-out', 'rsa.crt', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { cwd: dir.path, stdio: 'ignore' })
  rsa = { key: join(dir.path, 'rsa.key'), cert: join(dir.path, 'rsa.crt') }
  node = await startTestNode(join(dir.path, 'node'), { TLS_CERT: rsa.cert, TLS_KEY: rsa.key })
  await node.registry.createTenant('care-t', 'T')
  await node.registry.createTenant('care-u', 'U')
  dev = await node.registry.enrollDevice({ tenant: 'care-t', device: 'cal-t1', family: 'calarm', patient: null })
  other = await node.registry.enrollDevice({ tenant: 'care-u', device: 'cal-u1', family: 'calarm', patient: null })
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('TLS policy', () => {
  it('refuses TLS 1.0 and 1.1 that a permissive server accepts, and prefers TLS 1.3', async () => {
    const ca = rsa.cert ? execFileSync('cat', [rsa.cert]) : undefined
    const permissive = createTlsServer({ key: execFileSync('cat', [rsa.key]), cert: ca, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (s) => s.end())
    permissive.listen(0, '127.0.0.1')
    await once(permissive, 'listening')
    const port = (permissive.address() as { port: number }).port
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const client = { ca, minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' }
      expect(await handshake(port, client)).toMatch(/^ok/) // the client can speak it...
      expect(await handshake(node.mqtts.port, client)).toMatch(/^refused/) // ...and we refuse it
    }
    permissive.close()
    expect(await handshake(node.mqtts.port, { ca })).toMatch(/^ok TLSv1\.3/)
  })

  it('on TLS 1.2 offers only ECDHE suites: a client without forward secrecy is refused', async () => {
    const ca = execFileSync('cat', [rsa.cert])
    const permissive = createTlsServer({ key: execFileSync('cat', [rsa.key]), cert: ca, maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256' }, (s) => s.end())
    permissive.listen(0, '127.0.0.1')
    await once(permissive, 'listening')
    const port = (permissive.address() as { port: number }).port
    const staticRsa = { ca, maxVersion: 'TLSv1.2' as const, ciphers: 'AES128-GCM-SHA256' }
    expect(await handshake(port, staticRsa)).toMatch(/^ok TLSv1\.2 AES128-GCM-SHA256/)
    expect(await handshake(node.mqtts.port, staticRsa)).toMatch(/^refused/)
    expect(await handshake(node.mqtts.port, { ca, maxVersion: 'TLSv1.2' })).toMatch(/^ok TLSv1\.2 ECDHE-/)
    permissive.close()
  })

  it('reloads the server certificate without a restart', async () => {
    const fingerprint = async (): Promise<string> => {
      const s = tlsConnect({ host: '127.0.0.1', port: node.mqtts.port, servername: 'localhost', rejectUnauthorized: false })
      await once(s, 'secureConnect')
      const f = s.getPeerCertificate().fingerprint256
      s.destroy()
      return f
    }
    const before = await fingerprint()
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-out', 'rsa.crt', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { cwd: dir.path, stdio: 'ignore' })
    node.reloadTls()
    const after = await fingerprint()
    expect(after).not.toBe(before)
    expect(after).toBe(new (await import('node:crypto')).X509Certificate(execFileSync('cat', [rsa.cert])).fingerprint256)
  })
})

describe('mutual TLS with device certificates', () => {
  const publishOnce = async (opts: { key?: string; cert?: string; ca: string; clientId: string }): Promise<string> => {
    try {
      const c = mqtt.connect({ protocol: 'mqtts', host: '127.0.0.1', port: node.mqttsMutual!.port, servername: 'localhost', reconnectPeriod: 0, connectTimeout: 3000, ...opts })
      // a handshake the server aborts ends in 'close' without an 'error' from mqtt.js
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => { resolve() })
        c.once('error', reject)
        c.once('close', () => { reject(new Error('closed before CONNACK')) })
      })
      const sealer = new DeviceSealer({ tenant: 'care-t', device: 'cal-t1', keyId: 1, key: Buffer.from(dev.key, 'base64url') }, Date.now())
      const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
      await c.publishAsync(topic, Buffer.from(frame), { qos: 1 })
      await c.endAsync()
      return 'stored'
    } catch (e) {
      return (e as Error).message
    }
  }

  it('admits a device by its certificate and refuses no certificate, a foreign CA and a certificate for another tenant\'s device', async () => {
    const ca = execFileSync('cat', [rsa.cert]).toString()
    const issued = await node.registry.issueCertificate('care-t', 'cal-t1')
    expect(issued.certPem).toMatch(/BEGIN CERTIFICATE/)
    const before = await count(node, 'alarm_events', "device_id = 'cal-t1'")
    expect(await publishOnce({ ca, key: issued.keyPem!, cert: issued.certPem, clientId: 'cal-t1' })).toBe('stored')
    expect(await count(node, 'alarm_events', "device_id = 'cal-t1'")).toBe(before + 1)

    expect(await publishOnce({ ca, clientId: 'cal-t1' })).not.toBe('stored')
    // a self-made CA that nobody trusts
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.crt',
      '-days', '2', '-subj', '/O=care-t/CN=cal-t1'], { cwd: dir.path, stdio: 'ignore' })
    expect(await publishOnce({ ca, key: execFileSync('cat', [join(dir.path, 'rogue.key')]).toString(), cert: execFileSync('cat', [join(dir.path, 'rogue.crt')]).toString(), clientId: 'cal-t1' }))
      .not.toBe('stored')
    // care-t's CA vouching for care-u's device (O=care-t, CN=cal-u1): a valid chain, but no such device in care-t
    await expect(node.registry.issueCertificate('care-t', 'cal-u1')).rejects.toThrow(/unknown device/)
    const masterKey = Buffer.from(readFileSync(join(dir.path, 'node', 'master.key'), 'utf8').trim(), 'base64url')
    const crossed = await new CertificateAuthorities(join(dir.path, 'node', 'tenant-ca'), masterKey).issue('care-t', 'cal-u1')
    expect(await publishOnce({ ca, key: crossed.keyPem!, cert: crossed.certPem, clientId: 'cal-u1' })).toMatch(/Not authorized/i)
    // and care-u's own certificate for it does identify it
    expect(node.registry.deviceForCertificate(new X509Certificate((await node.registry.issueCertificate('care-u', 'cal-u1')).certPem))?.tenant).toBe('care-u')
    // the right certificate with another device's client id
    expect(await publishOnce({ ca, key: issued.keyPem!, cert: issued.certPem, clientId: 'cal-u1' })).toMatch(/Identifier rejected/i)
    expect(await count(node, 'alarm_events', "device_id = 'cal-t1'")).toBe(before + 1)
    expect(other.device).toBe('cal-u1')
  }, 30_000)

  it('signs a device\'s own CSR with the subject it is enrolled under, whatever the CSR asks for; the key never leaves the device', async () => {
    // the device's CSR claims another tenant's device and CA rights
    execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'own.key', '-out', 'own.csr',
      '-subj', '/O=care-u/CN=cal-u1', '-addext', 'basicConstraints=critical,CA:TRUE'], { cwd: dir.path, stdio: 'ignore' })
    const issued = await node.registry.issueCertificate('care-t', 'cal-t1', readFileSync(join(dir.path, 'own.csr'), 'utf8'))
    expect(issued.keyPem).toBeUndefined()
    const cert = new X509Certificate(issued.certPem)
    expect(cert.subject).toBe('O=care-t\nCN=cal-t1')
    expect(cert.ca).toBe(false)
    expect(node.registry.deviceForCertificate(cert)?.device).toBe('cal-t1')
    const key = readFileSync(join(dir.path, 'own.key'), 'utf8')
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(key))).toBe(true)
    expect(await publishOnce({ ca: execFileSync('cat', [rsa.cert]).toString(), key, cert: issued.certPem, clientId: 'cal-t1' })).toBe('stored')
  })

  withMosquitto('a client we did not write, mosquitto_pub, publishes a sealed payload with the device certificate and it is stored', async () => {
    const issued = await node.registry.issueCertificate('care-t', 'cal-t1')
    writeFileSync(join(dir.path, 'dev.crt'), issued.certPem)
    writeFileSync(join(dir.path, 'dev.key'), issued.keyPem!, { mode: 0o600 })
    const sealer = new DeviceSealer({ tenant: 'care-t', device: 'cal-t1', keyId: 1, key: Buffer.from(dev.key, 'base64url') }, Date.now() * 10)
    const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
    writeFileSync(join(dir.path, 'frame.bin'), frame)
    const before = await count(node, 'alarm_events', "device_id = 'cal-t1'")
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(node.mqttsMutual!.port), '--cafile', rsa.cert, '--cert', join(dir.path, 'dev.crt'),
      '--key', join(dir.path, 'dev.key'), '-i', 'cal-t1', '-t', topic, '-q', '1', '-f', join(dir.path, 'frame.bin')], { timeout: 10_000 })
    expect(await count(node, 'alarm_events', "device_id = 'cal-t1'")).toBe(before + 1)
  })
})
