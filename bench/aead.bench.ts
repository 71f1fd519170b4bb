/**
 * XChaCha20-Poly1305 open/seal: @noble/ciphers alone vs our hybrid (noble
 * HChaCha20 + Node's native ChaCha20-Poly1305), on identical frames. This is
 * the measurement behind the choice in src/crypto/aead.ts.
 */
import { randomBytes } from 'node:crypto'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { associatedData, open, prepareKey, seal } from '../src/crypto/index.ts'
import { machine, measure, ratio } from './harness.ts'

const key = randomBytes(32)
const prepared = prepareKey(key)
const ad = associatedData('care-north', 'brc-000123', 'vitals', 1_795_000_000_000_123, 1)
const results: Record<string, unknown>[] = []
for (const size of [120, 4096]) {
  const plain = randomBytes(size)
  const nonce = randomBytes(24)
  const sealedNoble = xchacha20poly1305(key, nonce, ad).encrypt(plain)
  const opened = open(prepared, nonce, sealedNoble, ad)
  if (opened === null || !opened.equals(plain)) throw new Error('hybrid does not open what noble sealed')
  if (!seal(prepared, nonce, plain, ad).equals(Buffer.from(sealedNoble))) throw new Error('hybrid and noble seal differently')
  const nobleOpen = measure(`noble open ${size} B`, () => xchacha20poly1305(key, nonce, ad).decrypt(sealedNoble))
  const hybridOpen = measure(`hybrid open ${size} B`, () => open(prepared, nonce, sealedNoble, ad))
  const nobleSeal = measure(`noble seal ${size} B`, () => xchacha20poly1305(key, nonce, ad).encrypt(plain))
  const hybridSeal = measure(`hybrid seal ${size} B`, () => seal(prepared, nonce, plain, ad))
  results.push({
    bytes: size,
    open: { nobleOpsPerSec: nobleOpen.opsPerSec, hybridOpsPerSec: hybridOpen.opsPerSec, hybridOverNoble: ratio(hybridOpen, nobleOpen) },
    seal: { nobleOpsPerSec: nobleSeal.opsPerSec, hybridOpsPerSec: hybridSeal.opsPerSec, hybridOverNoble: ratio(hybridSeal, nobleSeal) },
  })
}
process.stdout.write(JSON.stringify({ benchmark: 'aead', machine: machine(), results }, null, 2) + '\n')
