/**
 * The certificate route with a device's own CSR, over real HTTP and the real
 * openssl: anything that is not a well-formed, self-signed request for an
 * acceptable key is bad input (400 ING_ERR_CSR), never a 500, never echoed,
 * and nothing is issued.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const ROUTE = '/admin/tenants/care-c/devices/cal-c1/certificate'
const BEGIN = '-----BEGIN CERTIFICATE REQUEST-----'
const END = '-----END CERTIFICATE REQUEST-----'

async function post (csr: string): Promise<{ status: number; text: string; json: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${node.http.port}${ROUTE}`, {
    method: 'POST', headers: { authorization: `Bearer ${node.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ csr }),
  })
  const text = await r.text()
  return { status: r.status, text, json: JSON.parse(text) as Record<string, unknown> }
}

/** A CSR for a fresh key made with `newkey` (openssl req -newkey ...), as PEM. */
function csrFor (name: string, newkey: string[]): string {
  execFileSync('openssl', ['req', ...newkey, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=cal-c1'], { cwd: dir.path, stdio: 'ignore' })
  return readFileSync(join(dir.path, `${name}.csr`), 'utf8')
}

const armour = (body: string): string => `${BEGIN}\n${body}\n${END}\n`
const base64Lines = (der: Uint8Array): string => Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trim()

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(join(dir.path, 'node'))
  await node.registry.createTenant('care-c', 'C')
  await node.registry.enrollDevice({ tenant: 'care-c', device: 'cal-c1', family: 'calarm', patient: null })
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

const refusedAsCsr = (r: { status: number; json: Record<string, unknown> }): void => {
  expect(r.status).toBe(400)
  expect(r.json['error']).toBe('ING_ERR_CSR')
  expect(r.json['certPem']).toBeUndefined()
}

describe('certificate route with a device CSR', () => {
  it('answers 400 ING_ERR_CSR to the probe\'s garbage CSR', async () => {
    const r = await post(`${BEGIN}\ngarbage\n${END}`)
    refusedAsCsr(r)
    expect(r.json['message']).toMatch(/not a valid PEM certificate request/)
    expect(r.text).not.toContain('garbage')
  })

  it('answers 400, never 500, to arbitrary text in PEM armour and never echoes it', async () => {
    const inner = fc.oneof(
      fc.string({ minLength: 8, maxLength: 400 }),
      fc.string({ minLength: 8, maxLength: 200, unit: 'binary' }),
      fc.base64String({ minLength: 8, maxLength: 2000 }),
      // well-formed base64 of bytes that are not a DER request
      fc.uint8Array({ minLength: 6, maxLength: 1200 }).map(base64Lines),
    ).filter((s) => s.trim().length >= 8)
    await fc.assert(fc.asyncProperty(inner, async (s) => {
      const r = await post(armour(s))
      refusedAsCsr(r)
      expect(r.text).not.toContain(s.trim())
    }), { numRuns: 60 })
  }, 120_000)

  it('refuses a truncated request, a request whose self-signature does not verify, and a certificate in request armour', async () => {
    const good = csrFor('good', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'])
    const der = Buffer.from(good.replace(BEGIN, '').replace(END, '').replace(/\s/g, ''), 'base64')
    refusedAsCsr(await post(armour(base64Lines(der.subarray(0, der.length - 20)))))
    const flipped = Buffer.from(der)
    flipped[flipped.length - 5]! ^= 0x01
    const forged = await post(armour(base64Lines(flipped)))
    refusedAsCsr(forged)
    expect(forged.json['message']).toMatch(/signature does not verify/)
    const cert = execFileSync('openssl', ['x509', '-in', join(dir.path, 'node', 'tls', 'ca.crt'), '-outform', 'DER'])
    refusedAsCsr(await post(armour(base64Lines(cert))))
    // the same request, unharmed, is signed
    expect((await post(good)).status).toBe(201)
  })

  it('refuses weak or unsupported keys (RSA 1024, DSA, secp256k1) and signs RSA 2048 and EC P-384', async () => {
    for (const [name, newkey] of [
      ['rsa1024', ['-newkey', 'rsa:1024']],
      ['k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1']],
    ] as const) {
      const r = await post(csrFor(name, [...newkey]))
      refusedAsCsr(r)
      expect(r.json['message'], name).toMatch(/key/)
    }
    execFileSync('openssl', ['genpkey', '-genparam', '-algorithm', 'DSA', '-pkeyopt', 'dsa_paramgen_bits:2048', '-out', 'dsa.param'], { cwd: dir.path, stdio: 'ignore' })
    refusedAsCsr(await post(csrFor('dsa', ['-newkey', `dsa:${join(dir.path, 'dsa.param')}`])))
    for (const [name, newkey] of [['rsa2048', ['-newkey', 'rsa:2048']], ['p384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']]] as const) {
      const r = await post(csrFor(name, [...newkey]))
      expect(r.status, name).toBe(201)
      expect(r.json['certPem']).toMatch(/BEGIN CERTIFICATE/)
    }
  }, 60_000)
})
