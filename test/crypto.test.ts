import { randomBytes } from 'node:crypto'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { associatedData, open, prepareKey, seal, unwrapKey, wrapKey } from '../src/crypto/index.ts'

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/)
const stream = fc.constantFrom('vitals', 'spot', 'alarm', 'status')
const seq = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
const keyId = fc.integer({ min: 0, max: 0xffffffff })
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n })

describe('XChaCha20-Poly1305 (libsodium), checked against @noble/ciphers', () => {
  it('opens what @noble/ciphers sealed, and noble opens what we seal', () => {
    fc.assert(fc.property(bytes(32), bytes(24), fc.uint8Array({ maxLength: 5000 }), fc.uint8Array({ maxLength: 64 }), (key, nonce, plain, ad) => {
      const byNoble = xchacha20poly1305(key, nonce, ad).encrypt(plain)
      expect(open(prepareKey(key), nonce, byNoble, ad)).toEqual(Buffer.from(plain))
      const ours = seal(prepareKey(key), nonce, plain, ad)
      expect(Buffer.from(xchacha20poly1305(key, nonce, ad).decrypt(ours))).toEqual(Buffer.from(plain))
    }), { numRuns: 200 })
  })

  it('matches the draft-irtf-cfrg-xchacha-03 A.3.1 test vector', () => {
    const key = Buffer.from('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', 'hex')
    const nonce = Buffer.from('404142434445464748494a4b4c4d4e4f5051525354555657', 'hex')
    const ad = Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex')
    const plain = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
    const expected = 'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e' +
      'c0875924c1c7987947deafd8780acf49'
    expect(seal(prepareKey(key), nonce, plain, ad).toString('hex')).toBe(expected)
    expect(open(prepareKey(key), nonce, Buffer.from(expected, 'hex'), ad)).toEqual(plain)
  })

  it('refuses any flipped bit, any other associated-data field and any other key', () => {
    fc.assert(fc.property(bytes(32), bytes(24), fc.uint8Array({ maxLength: 300 }), id, id, stream, seq, keyId, fc.nat(), fc.integer({ min: 0, max: 7 }),
      (key, nonce, plain, tenant, device, s, q, k, where, bit) => {
        const ad = associatedData(tenant, device, s, q, k)
        const sealed = seal(prepareKey(key), nonce, plain, ad)
        const flipped = Buffer.from(sealed)
        flipped[where % flipped.length]! ^= 1 << bit
        expect(open(prepareKey(key), nonce, flipped, ad)).toBeNull()
        const other = Buffer.from(key)
        other[where % 32]! ^= 1 << bit
        expect(open(prepareKey(other), nonce, sealed, ad)).toBeNull()
        for (const moved of [
          associatedData(tenant + 'x', device, s, q, k), associatedData(tenant, device + 'x', s, q, k),
          associatedData(tenant, device, s === 'vitals' ? 'alarm' : 'vitals', q, k), associatedData(tenant, device, s, q === 0 ? 1 : q - 1, k),
          associatedData(tenant, device, s, q, (k + 1) >>> 0),
        ]) expect(open(prepareKey(key), nonce, sealed, moved)).toBeNull()
      }), { numRuns: 200 })
  })

  it('associated data is injective over (tenant, device, stream, seq, key id)', () => {
    const tuple = fc.tuple(id, id, stream, seq, keyId)
    fc.assert(fc.property(tuple, tuple, (a, b) => {
      fc.pre(JSON.stringify(a) !== JSON.stringify(b))
      expect(associatedData(...a).equals(associatedData(...b))).toBe(false)
    }), { numRuns: 2000 })
  })
})

describe('device key wrapping', () => {
  it('round-trips and refuses another master key, device, tenant, key id or a tampered record', () => {
    const master = randomBytes(32)
    const key = randomBytes(32)
    const wrapped = wrapKey(master, 't1', 'd1', 1, key)
    expect(unwrapKey(master, 't1', 'd1', 1, wrapped)).toEqual(key)
    expect(wrapped).not.toContain(key.toString('base64url'))
    const tampered = Buffer.from(wrapped, 'base64url')
    tampered[20]! ^= 1
    for (const attempt of [
      () => unwrapKey(randomBytes(32), 't1', 'd1', 1, wrapped), () => unwrapKey(master, 't1', 'd2', 1, wrapped),
      () => unwrapKey(master, 't2', 'd1', 1, wrapped), () => unwrapKey(master, 't1', 'd1', 2, wrapped),
      () => unwrapKey(master, 't1', 'd1', 1, tampered.toString('base64url')), () => unwrapKey(master, 't1', 'd1', 1, 'short'),
    ]) expect(attempt).toThrow(expect.objectContaining({ code: 'ING_ERR_KEY_WRAP' }))
  })
})
