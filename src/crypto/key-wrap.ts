/**
 * Device payload keys are stored wrapped by a master key (AES-256-GCM, random
 * 96-bit IV), with tenant, device and key id as associated data: a wrapped key
 * copied to another device's row does not unwrap. Wire format (base64url):
 * iv(12) || ciphertext(32) || tag(16).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { KeyWrapError } from './errors.ts'

export const MASTER_KEY_BYTES = 32

function context (tenant: string, device: string, keyId: number): Buffer {
  return Buffer.from(`vf-keywrap\0${tenant}\0${device}\0${keyId}`, 'utf8')
}

export function wrapKey (master: Uint8Array, tenant: string, device: string, keyId: number, key: Uint8Array): string {
  const iv = randomBytes(12)
  const c = createCipheriv('aes-256-gcm', master, iv)
  c.setAAD(context(tenant, device, keyId))
  const ct = Buffer.concat([c.update(key), c.final()])
  return Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64url')
}

export function unwrapKey (master: Uint8Array, tenant: string, device: string, keyId: number, wrapped: string): Buffer {
  const raw = Buffer.from(wrapped, 'base64url')
  if (raw.length < 12 + 16 + 1) throw new KeyWrapError(`wrapped key for device key ${keyId} is truncated`)
  const d = createDecipheriv('aes-256-gcm', master, raw.subarray(0, 12))
  d.setAAD(context(tenant, device, keyId))
  d.setAuthTag(raw.subarray(raw.length - 16))
  try {
    return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()])
  } catch (cause) {
    throw new KeyWrapError(`device key ${keyId} does not unwrap: wrong master key or tampered record`, { cause })
  }
}
