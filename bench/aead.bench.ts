/**
 * XChaCha20-Poly1305 open/seal on identical frames, three ways:
 *  - libsodium (sodium-native), what src/crypto/aead.ts uses;
 *  - the hybrid it used before: noble's HChaCha20 subkey + Node's OpenSSL ChaCha20-Poly1305
 *    (a Decipher object per frame), kept here as the baseline;
 *  - @noble/ciphers alone (pure JS), the first baseline.
 * Every way must open what the others sealed before anything is timed.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { hchacha, xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { associatedData, open, prepareKey, seal } from '../src/crypto/index.ts'
import { machine, measure, ratio } from './harness.ts'

// ── the hybrid, as src/crypto/aead.ts had it until 2026-12-02 ──────────────────────────────────
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574])
const nonceWords = new Uint32Array(4)
const subkeyWords = new Uint32Array(8)
const subkey = Buffer.from(subkeyWords.buffer)
const iv = Buffer.alloc(12)
const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
function derive (keyWords: Uint32Array, nonce: Uint8Array): void {
  for (let i = 0; i < 4; i++) nonceWords[i] = u32(nonce, i * 4)
  hchacha(SIGMA, keyWords, nonceWords, subkeyWords)
  iv.set(nonce.subarray(16, 24), 4)
}
function hybridOpen (keyWords: Uint32Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  derive(keyWords, nonce)
  const ctLen = sealed.length - 16
  const d = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: 16 })
  d.setAAD(ad, { plaintextLength: ctLen })
  d.setAuthTag(sealed.subarray(ctLen))
  const out = d.update(sealed.subarray(0, ctLen))
  try { d.final() } catch { return null }
  return out
}
function hybridSeal (keyWords: Uint32Array, nonce: Uint8Array, plain: Uint8Array, ad: Uint8Array): Buffer {
  derive(keyWords, nonce)
  const c = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: 16 })
  c.setAAD(ad, { plaintextLength: plain.length })
  const head = c.update(plain)
  c.final()
  return Buffer.concat([head, c.getAuthTag()])
}

const key = randomBytes(32)
const prepared = prepareKey(key)
const keyWords = new Uint32Array(8)
for (let i = 0; i < 8; i++) keyWords[i] = u32(key, i * 4)
const ad = associatedData('care-north', 'brc-000123', 'vitals', 1_795_000_000_000_123, 1)
const results: Record<string, unknown>[] = []
for (const size of [120, 4096]) {
  const plain = randomBytes(size)
  const nonce = randomBytes(24)
  const sealedNoble = Buffer.from(xchacha20poly1305(key, nonce, ad).encrypt(plain))
  for (const [name, opened] of [['libsodium', open(prepared, nonce, sealedNoble, ad)], ['hybrid', hybridOpen(keyWords, nonce, sealedNoble, ad)]] as const) {
    if (opened === null || !opened.equals(plain)) throw new Error(`${name} does not open what noble sealed`)
  }
  if (!seal(prepared, nonce, plain, ad).equals(sealedNoble)) throw new Error('libsodium and noble seal differently')
  if (!hybridSeal(keyWords, nonce, plain, ad).equals(sealedNoble)) throw new Error('the hybrid and noble seal differently')
  const o = {
    libsodium: measure(`libsodium open ${size} B`, () => open(prepared, nonce, sealedNoble, ad)),
    hybrid: measure(`hybrid open ${size} B`, () => hybridOpen(keyWords, nonce, sealedNoble, ad)),
    noble: measure(`noble open ${size} B`, () => xchacha20poly1305(key, nonce, ad).decrypt(sealedNoble)),
  }
  const s = {
    libsodium: measure(`libsodium seal ${size} B`, () => seal(prepared, nonce, plain, ad)),
    hybrid: measure(`hybrid seal ${size} B`, () => hybridSeal(keyWords, nonce, plain, ad)),
    noble: measure(`noble seal ${size} B`, () => xchacha20poly1305(key, nonce, ad).encrypt(plain)),
  }
  const row = (m: typeof o): object => ({
    libsodiumOpsPerSec: m.libsodium.opsPerSec, hybridOpsPerSec: m.hybrid.opsPerSec, nobleOpsPerSec: m.noble.opsPerSec,
    libsodiumOverHybrid: ratio(m.libsodium, m.hybrid), libsodiumOverNoble: ratio(m.libsodium, m.noble),
  })
  results.push({ bytes: size, open: row(o), seal: row(s) })
}
process.stdout.write(JSON.stringify({ benchmark: 'aead', machine: machine(), results }, null, 2) + '\n')
