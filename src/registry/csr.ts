/**
 * Checks a device's certificate signing request before the tenant CA signs it:
 * it must parse, its self-signature must verify (the device holds the key), and
 * its key must be one a device certificate may carry. What is refused is bad
 * input (CsrError, ING_ERR_CSR); the message never quotes the request.
 */
import { execFile } from 'node:child_process'
import { createPublicKey } from 'node:crypto'
import { promisify } from 'node:util'
import { VitalflowError } from '../errors.ts'

export class CsrError extends VitalflowError<'ING_ERR_CSR'> {
  constructor (message: string, options?: ErrorOptions) {
    super('ING_ERR_CSR', message, options)
  }
}

const execFileAsync = promisify(execFile)
const CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1'])
const MIN_RSA_BITS = 2048

/** What a device key may be: EC on P-256/384/521, RSA of at least 2048 bits, or Ed25519. */
function keyProblem (publicKeyPem: string): string | null {
  const key = createPublicKey(publicKeyPem)
  const d = key.asymmetricKeyDetails ?? {}
  switch (key.asymmetricKeyType) {
    case 'ec': return CURVES.has(d.namedCurve ?? '') ? null : 'certificate request key must be EC on P-256, P-384 or P-521'
    case 'rsa': return (d.modulusLength ?? 0) >= MIN_RSA_BITS ? null : `certificate request RSA key must have at least ${MIN_RSA_BITS} bits`
    case 'ed25519': return null
    default: return 'certificate request key must be EC (P-256, P-384, P-521), RSA (2048 bits or more) or Ed25519'
  }
}

/** Verifies the request in `file` (relative to `cwd`) with the openssl CLI; throws CsrError if it is not acceptable. */
export async function checkCsr (file: string, cwd: string): Promise<void> {
  let out: { stdout: string; stderr: string }
  try {
    out = await execFileAsync('openssl', ['req', '-in', file, '-noout', '-verify', '-pubkey'], { cwd })
  } catch (cause) {
    throw new CsrError('not a valid PEM certificate request', { cause })
  }
  // OpenSSL 3.0 exits 0 when the self-signature does not verify: read its verdict
  if (!/verify OK/.test(out.stderr) || /verify fail/i.test(out.stderr)) throw new CsrError('certificate request signature does not verify')
  let problem: string | null
  try {
    problem = keyProblem(out.stdout)
  } catch (cause) {
    throw new CsrError('not a valid PEM certificate request', { cause })
  }
  if (problem !== null) throw new CsrError(problem)
}
