/**
 * Per-tenant certificate authorities and device client certificates for mutual
 * TLS, made with the openssl CLI. A device certificate names its tenant in O
 * and its device id in CN and is signed by that tenant's own CA. CA private keys
 * are stored encrypted (AES-256) under a passphrase derived from the master key.
 */
import { createHmac, randomBytes, X509Certificate } from 'node:crypto'
import { execFile, execFileSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { checkCsr } from './csr.ts'

export interface TenantCa { tenant: string; certPem: string; cert: X509Certificate }

function openssl (args: string[], cwd: string, env: Record<string, string> = {}): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } })
}

/** The rows of one of the CA's own tab-separated records (issued.tsv, revoked.tsv); none while it does not exist. */
function readTsv (path: string): string[][] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => l.split('\t')) : []
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

  private paths (tenant: string): { dir: string; key: string; cert: string; issued: string; revoked: string; crl: string } {
    const dir = join(this.dir, tenant)
    return { dir, key: join(dir, 'ca.key'), cert: join(dir, 'ca.crt'), issued: join(dir, 'issued.tsv'), revoked: join(dir, 'revoked.tsv'), crl: join(dir, 'crl.pem') }
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
    const serial = `01${randomBytes(15).toString('hex')}`.toUpperCase()
    const ca = ['-CA', p.cert, '-CAkey', p.key, '-passin', 'env:VF_CA_PASS', '-set_serial', `0x${serial}`, '-days', '397']
    const env = { VF_CA_PASS: this.passphrase(tenant) }
    // the subject is set here, not taken from the CSR: a device cannot name another tenant or device
    const subject = ['-subj', `/O=${tenant}/CN=${device}`]
    try {
      if (csrPem === undefined) {
        // key and certificate in one openssl run (req -x509 -CA, OpenSSL 3)
        await opensslAsync(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'device.key', '-out', 'device.crt',
          ...subject, ...ca, '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth'], work, env)
        const certPem = await readFile(join(work, 'device.crt'), 'utf8')
        this.record(tenant, device, serial, certPem)
        return { certPem, keyPem: await readFile(join(work, 'device.key'), 'utf8') }
      }
      await writeFile(join(work, 'device.csr'), csrPem)
      // a malformed request, a forged self-signature or a weak key is the caller's error (CsrError), not ours
      await checkCsr('device.csr', work)
      await writeFile(join(work, 'ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n')
      await opensslAsync(['x509', '-req', '-in', 'device.csr', ...ca, '-extfile', 'ext', '-out', 'device.crt', ...subject], work, env)
      const certPem = await readFile(join(work, 'device.crt'), 'utf8')
      this.record(tenant, device, serial, certPem)
      return { certPem }
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  }

  /** Every certificate issued, by serial: what a revocation puts on the CRL. */
  private record (tenant: string, device: string, serial: string, certPem: string): void {
    appendFileSync(this.paths(tenant).issued, `${serial}\t${device}\t${new X509Certificate(certPem).validTo}\n`, { mode: 0o600 })
  }

  /**
   * Puts every certificate issued to the device on its tenant's revocation list and signs the list
   * again; the mutual-TLS listener then refuses them at the handshake (once it is given the new list).
   */
  async revoke (tenant: string, device: string): Promise<void> {
    const p = this.paths(tenant)
    this.ensure(tenant)
    const issued = readTsv(p.issued) as Array<[string, string, string]>
    const now = new Date()
    for (const [serial, d, validTo] of issued) if (d === device) appendFileSync(p.revoked, `${serial}\t${d}\t${validTo}\t${now.toISOString()}\n`, { mode: 0o600 })
    // signed without holding the event loop, as issuance is: a revocation happens while devices publish
    await opensslAsync(this.crlDatabase(tenant), p.dir, { VF_CA_PASS: this.passphrase(tenant) })
  }

  /**
   * The tenant CA's revocation list (PEM), signed on first use. Every CA the listener trusts needs
   * one: with CRL checking on, a certificate whose issuer has none is refused.
   */
  crl (tenant: string): string {
    const p = this.paths(tenant)
    this.ensure(tenant)
    // the first list, empty, at start-up or when a tenant is created
    if (!existsSync(p.crl)) openssl(this.crlDatabase(tenant), p.dir, { VF_CA_PASS: this.passphrase(tenant) })
    return readFileSync(p.crl, 'utf8')
  }

  /** Every tenant's revocation list, for the mutual-TLS listener. */
  crls (tenants: Iterable<string>): string[] {
    return [...tenants].map((t) => this.crl(t))
  }

  /**
   * Writes openssl's CA database from revoked.tsv and answers the openssl arguments that sign the CRL
   * from it (valid 10 years: it is signed again on every revocation).
   */
  private crlDatabase (tenant: string): string[] {
    const p = this.paths(tenant)
    const asn1 = (d: Date): string => d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z')
    const revoked = readTsv(p.revoked) as Array<[string, string, string, string]>
    const index = revoked.map(([serial, device, validTo, at]) => `R\t${asn1(new Date(validTo))}\t${asn1(new Date(at))}\t${serial}\tunknown\t/O=${tenant}/CN=${device}\n`).join('')
    writeFileSync(join(p.dir, 'index.txt'), index, { mode: 0o600 })
    if (!existsSync(join(p.dir, 'crlnumber'))) writeFileSync(join(p.dir, 'crlnumber'), '01\n')
    writeFileSync(join(p.dir, 'crl.cnf'), '[ca]\ndefault_ca = tenant\n[tenant]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 3650\n')
    return ['ca', '-gencrl', '-config', 'crl.cnf', '-keyfile', 'ca.key', '-cert', 'ca.crt', '-passin', 'env:VF_CA_PASS', '-out', 'crl.pem']
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
