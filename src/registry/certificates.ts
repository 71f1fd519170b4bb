/**
 * Per-tenant certificate authorities and device client certificates for mutual
 * TLS, made with the openssl CLI. A device certificate names its tenant in O
 * and its device id in CN and is signed by that tenant's own CA. CA private keys
 * are stored encrypted (AES-256) under a passphrase derived from the master key.
 */
import { createHmac, randomBytes, X509Certificate } from 'node:crypto'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { checkCsr } from './csr.ts'

export interface TenantCa { tenant: string; certPem: string; cert: X509Certificate }

function openssl (args: string[], cwd: string, env: Record<string, string> = {}): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } })
}

const execFileAsync = promisify(execFile)
/** The same, without holding the event loop (~13 ms per call): the broker keeps serving while devices are provisioned. */
async function opensslAsync (args: string[], cwd: string, env: Record<string, string> = {}): Promise<void> {
  await execFileAsync('openssl', args, { cwd, env: { ...process.env, ...env } })
}

export class CertificateAuthorities {
  private readonly cas = new Map<string, TenantCa>()

  constructor (private readonly dir: string, private readonly masterKey: Uint8Array) {}

  private passphrase (tenant: string): string {
    return createHmac('sha256', this.masterKey).update(`vitalflow tenant CA\0${tenant}`).digest('base64url')
  }

  private paths (tenant: string): { dir: string; key: string; cert: string } {
    const dir = join(this.dir, tenant)
    return { dir, key: join(dir, 'ca.key'), cert: join(dir, 'ca.crt') }
  }

  /** The tenant's CA, created on first use. */
  ensure (tenant: string): TenantCa {
    const known = this.cas.get(tenant)
    if (known !== undefined) return known
    const p = this.paths(tenant)
    if (!existsSync(p.cert)) {
      mkdirSync(p.dir, { recursive: true, mode: 0o700 })
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-passout', 'env:VF_CA_PASS',
        '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', `/O=${tenant}/CN=vitalflow device CA ${tenant}`,
        '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], p.dir, { VF_CA_PASS: this.passphrase(tenant) })
    }
    const certPem = readFileSync(p.cert, 'utf8')
    const ca = { tenant, certPem, cert: new X509Certificate(certPem) }
    this.cas.set(tenant, ca)
    return ca
  }

  /** Every tenant CA, for the mutual-TLS listener's trust store. */
  bundle (tenants: Iterable<string>): string[] {
    return [...tenants].map((t) => this.ensure(t).certPem)
  }

  /**
   * Issues a client certificate for a device: from the device's own CSR if it
   * sent one (its key never leaves it), otherwise with a key made here and
   * returned once (development and provisioning stations).
   */
  async issue (tenant: string, device: string, csrPem?: string): Promise<{ certPem: string; keyPem?: string }> {
    const p = this.paths(tenant)
    this.ensure(tenant)
    const work = await mkdtemp(join(tmpdir(), 'vf-cert-'))
    const ca = ['-CA', p.cert, '-CAkey', p.key, '-passin', 'env:VF_CA_PASS', '-set_serial', `0x01${randomBytes(15).toString('hex')}`, '-days', '397']
    const env = { VF_CA_PASS: this.passphrase(tenant) }
    // the subject is set here, not taken from the CSR: a device cannot name another tenant or device
    const subject = ['-subj', `/O=${tenant}/CN=${device}`]
    try {
      if (csrPem === undefined) {
        // key and certificate in one openssl run (req -x509 -CA, OpenSSL 3)
        await opensslAsync(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'device.key', '-out', 'device.crt',
          ...subject, ...ca, '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth'], work, env)
        return { certPem: await readFile(join(work, 'device.crt'), 'utf8'), keyPem: await readFile(join(work, 'device.key'), 'utf8') }
      }
      await writeFile(join(work, 'device.csr'), csrPem)
      // a malformed request, a forged self-signature or a weak key is the caller's error (CsrError), not ours
      await checkCsr('device.csr', work)
      await writeFile(join(work, 'ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n')
      await opensslAsync(['x509', '-req', '-in', 'device.csr', ...ca, '-extfile', 'ext', '-out', 'device.crt', ...subject], work, env)
      return { certPem: await readFile(join(work, 'device.crt'), 'utf8') }
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  }

  /**
   * The (tenant, device) a verified peer certificate speaks for, or null. The
   * certificate must be signed by the CA of the tenant it names: one tenant's
   * CA cannot vouch for another tenant's devices.
   */
  identify (peer: X509Certificate): { tenant: string; device: string } | null {
    const o = /(?:^|\n)O=([^\n]+)/.exec(peer.subject)?.[1]
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(peer.subject)?.[1]
    if (o === undefined || cn === undefined) return null
    const ca = this.cas.get(o)
    if (ca === undefined || !peer.checkIssued(ca.cert) || !peer.verify(ca.cert.publicKey)) return null
    return { tenant: o, device: cn }
  }
}
