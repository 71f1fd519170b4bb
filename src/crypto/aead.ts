/**
 * XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) for device payloads, by libsodium (sodium-native's
 * prebuilt binding: crypto_aead_xchacha20poly1305_ietf_*), in one native call per frame.
 *
 * bench/aead.bench.ts measures it against the two ways this file used before: @noble/ciphers alone,
 * and noble's HChaCha20 with Node's OpenSSL ChaCha20-Poly1305 (a Decipher object per frame, whose
 * construction cost more than the decryption). test/crypto.test.ts and test/test-vectors.test.ts
 * keep opening frames sealed by noble, and the draft's test vector, so the implementations cannot drift.
 */
import { randomFillSync } from 'node:crypto'
import sodium from 'sodium-native'

export const KEY_BYTES = 32
export const NONCE_BYTES = 24
export const TAG_BYTES = 16

/** A device payload key, checked once so the hot path does no key handling. */
export interface AeadKey {
  readonly raw: Uint8Array
}

export function prepareKey (raw: Uint8Array): AeadKey {
  if (raw.length !== KEY_BYTES) throw new RangeError(`AEAD key must be ${KEY_BYTES} bytes, got ${raw.length}`)
  return { raw: Uint8Array.from(raw) }
}

/**
 * Opens a sealed payload. Returns the plaintext (a buffer of its own), or null when the tag does not
 * verify (wrong key, tampered bytes, wrong associated data).
 */
export function open (key: AeadKey, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) return null
  const out = Buffer.allocUnsafe(sealed.length - TAG_BYTES)
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, sealed, ad, nonce, key.raw)
  } catch {
    // libsodium's only failure here is a tag that does not verify (the lengths are checked above);
    // `out` was never filled, and nothing of it escapes
    return null
  }
  return out
}

/** Seals a payload; returns ciphertext || tag. The nonce must be fresh and random. */
export function seal (key: AeadKey, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`)
  const out = Buffer.allocUnsafe(plaintext.length + TAG_BYTES)
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, ad, null, nonce, key.raw)
  return out
}

export function randomNonce (): Buffer {
  return randomFillSync(Buffer.allocUnsafe(NONCE_BYTES))
}
