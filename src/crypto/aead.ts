/**
 * XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) for device payloads.
 *
 * The subkey derivation (HChaCha20) comes from @noble/ciphers; the bulk
 * ChaCha20-Poly1305 runs in Node's native OpenSSL binding. bench/aead.bench.ts
 * measures this hybrid against noble's pure-JS xchacha20poly1305 on the same
 * frames; the hybrid wins at every size measured here, and test/crypto.test.ts
 * keeps opening frames sealed by noble itself so the two can never drift.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto'
import { hchacha } from '@noble/ciphers/chacha.js'

export const KEY_BYTES = 32
export const NONCE_BYTES = 24
export const TAG_BYTES = 16

/** "expand 32-byte k" as little-endian words. */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574])

/** A device payload key, prepared once so the hot path does no key conversion. */
export interface AeadKey {
  readonly words: Uint32Array
}

export function prepareKey (raw: Uint8Array): AeadKey {
  if (raw.length !== KEY_BYTES) throw new RangeError(`AEAD key must be ${KEY_BYTES} bytes, got ${raw.length}`)
  const words = new Uint32Array(8)
  for (let i = 0; i < 8; i++) words[i] = readU32LE(raw, i * 4)
  return { words }
}

// Scratch space for the subkey derivation: the process is single-threaded and
// derive() never yields, so one set of buffers serves every call.
const nonceWords = new Uint32Array(4)
const subkeyWords = new Uint32Array(8)
const subkey = Buffer.from(subkeyWords.buffer)
const iv = Buffer.alloc(12)

function derive (key: AeadKey, nonce: Uint8Array): void {
  for (let i = 0; i < 4; i++) nonceWords[i] = readU32LE(nonce, i * 4)
  hchacha(SIGMA, key.words, nonceWords, subkeyWords)
  // IETF ChaCha20 nonce = 4 zero bytes || last 8 bytes of the XChaCha nonce
  iv.set(nonce.subarray(16, 24), 4)
}

/**
 * Opens a sealed payload. Returns the plaintext, or null when the tag does not
 * verify (wrong key, tampered bytes, wrong associated data).
 */
export function open (key: AeadKey, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) return null
  derive(key, nonce)
  const ctLen = sealed.length - TAG_BYTES
  const decipher = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES })
  decipher.setAAD(ad, { plaintextLength: ctLen })
  decipher.setAuthTag(sealed.subarray(ctLen))
  const out = decipher.update(sealed.subarray(0, ctLen))
  try {
    decipher.final()
  } catch {
    return null
  }
  return out
}

/** Seals a payload; returns ciphertext || tag. The nonce must be fresh and random. */
export function seal (key: AeadKey, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`)
  derive(key, nonce)
  const cipher = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(ad, { plaintextLength: plaintext.length })
  const head = cipher.update(plaintext)
  cipher.final()
  return Buffer.concat([head, cipher.getAuthTag()])
}

export function randomNonce (): Buffer {
  return randomFillSync(Buffer.allocUnsafe(NONCE_BYTES))
}

function readU32LE (b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
}
