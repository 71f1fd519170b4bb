/**
 * The part of sodium-native (libsodium's Node binding) that src/crypto/aead.ts uses. The binding takes
 * any typed array; the published @types package says Buffer, and is for an older major version.
 */
declare module 'sodium-native' {
  /** Writes ciphertext || tag into `c` (m.length + 16 bytes). Returns the bytes written. */
  export function crypto_aead_xchacha20poly1305_ietf_encrypt (c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number
  /** Writes the plaintext into `m` (c.length - 16 bytes); throws when the tag does not verify. */
  export function crypto_aead_xchacha20poly1305_ietf_decrypt (m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number
}
