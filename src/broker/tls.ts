/**
 * TLS material. Production passes a certificate and key; on first start in
 * development a CA and a server certificate (ECDSA P-256, SAN localhost and
 * 127.0.0.1) are created with the openssl CLI under DATA_DIR/tls.
 */
import { execFileSync } from 'node:child_process'
import { constants, hkdfSync } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TlsMaterial { key: Buffer; cert: Buffer; ca: Buffer | undefined; caPath: string | undefined }

/**
 * TLS 1.2 and 1.3 only; on 1.2 only ECDHE suites with AEAD ciphers (forward secrecy)
 * and no renegotiation: Node lets a client renegotiate a 1.2 session (a CPU-cost lever
 * for the client; testssl flags it). TLS 1.3 has no renegotiation. These are secure
 * context options, so a certificate reload (setSecureContext) keeps them.
 */
export const TLS_OPTIONS = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305', 'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  ].join(':'),
  honorCipherOrder: true,
  ecdhCurve: 'X25519:P-256:P-384',
  secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
} as const

/** A ticket key lives one UTC day; a device reconnecting the next day gets one full handshake. */
export const TICKET_KEY_LIFETIME_MS = 86_400_000

/**
 * The session-ticket keys of the period that holds `nowMs`, derived from the master key: every
 * process of a node (and every node sharing the master key) issues and accepts the same tickets,
 * so a fleet reconnecting after a restart resumes its sessions.
 */
export function ticketKeysAt (masterKey: Uint8Array, nowMs: number): Buffer {
  const period = Math.floor(nowMs / TICKET_KEY_LIFETIME_MS)
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `vitalflow tls session tickets ${period}`, 48))
}

function openssl (args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

export function ensureDevTls (dataDir: string): { keyPath: string; certPath: string; caPath: string } {
  const dir = join(dataDir, 'tls')
  const keyPath = join(dir, 'server.key')
  const certPath = join(dir, 'server.crt')
  const caPath = join(dir, 'ca.crt')
  if (existsSync(keyPath) && existsSync(certPath) && existsSync(caPath)) return { keyPath, certPath, caPath }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '825', '-subj', '/O=vitalflow development/CN=vitalflow dev CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/O=vitalflow development/CN=localhost'], dir)
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n')
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '397',
    '-extfile', 'server.ext'], dir)
  rmSync(join(dir, 'server.csr'))
  return { keyPath, certPath, caPath }
}

export function loadTls (opts: { dataDir: string; cert?: string | undefined; key?: string | undefined; ca?: string | undefined }): TlsMaterial {
  if (opts.cert !== undefined || opts.key !== undefined) {
    if (opts.cert === undefined || opts.key === undefined) throw new Error('VF_TLS_CERT and VF_TLS_KEY must be set together')
    return { key: readFileSync(opts.key), cert: readFileSync(opts.cert), ca: opts.ca === undefined ? undefined : readFileSync(opts.ca), caPath: opts.ca }
  }
  const dev = ensureDevTls(opts.dataDir)
  return { key: readFileSync(dev.keyPath), cert: readFileSync(dev.certPath), ca: readFileSync(dev.caPath), caPath: dev.caPath }
}
