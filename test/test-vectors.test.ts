/**
 * docs/test-vectors.json against our own code both ways: every vector's MQTT
 * payload opens with src/decode + src/crypto into the published message, and
 * re-sealing the published message with the published nonce gives the
 * published bytes. noble's XChaCha20-Poly1305 agrees on every ciphertext, and
 * the file is exactly what scripts/test-vectors.ts generates.
 */
import { readFileSync } from 'node:fs'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { describe, expect, it } from 'vitest'
import { DeviceSealer, encodePayload } from '../devices/index.ts'
import { associatedData, open, prepareKey } from '../src/crypto/index.ts'
import {
  AlarmEventType, BraceletBatchType, DeviceStatusType, SpotMeasurementType, decodeEnvelope, decodePayload, parseTopic, type Stream,
} from '../src/decode/index.ts'
import { VECTORS_PATH, vectorsJson, type Vector } from '../scripts/test-vectors.ts'

const file = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as { vectors: Vector[] }
const TYPES = { vitals: BraceletBatchType, spot: SpotMeasurementType, alarm: AlarmEventType, status: DeviceStatusType } as const
const hex = (s: string): Buffer => Buffer.from(s, 'hex')
const camel = (k: string): string => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
function camelKeys (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelKeys)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [camel(k), camelKeys(x)]))
  return v
}
/** The node's clock for the range checks: a minute after the message (vector times are fixed). */
const nowFor = (v: Vector): number => Number(Object.entries(v.message).find(([k]) => k.endsWith('_at_ms') || k === 'window_start_ms')![1]) + 60_000

describe('published test vectors', () => {
  it('cover every stream, and the file is what the generator writes', () => {
    expect(new Set(file.vectors.map((v) => v.stream))).toEqual(new Set<Stream>(['vitals', 'spot', 'alarm', 'status']))
    expect(file.vectors.map((v) => v.seq)).toContain('18446744073709551615')
    expect(readFileSync(VECTORS_PATH, 'utf8')).toBe(vectorsJson())
  })

  it.each(file.vectors.map((v) => [v.name, v] as const))('%s: opens with our decoder and crypto', (_name, v) => {
    const topic = parseTopic(v.topic)
    expect(topic).toEqual({ tenant: v.tenant, device: v.device, stream: v.stream })
    const env = decodeEnvelope(hex(v.mqtt_payload_hex))
    if (!env.ok) throw new Error(env.detail)
    expect(env.value).toMatchObject({ version: 1, deviceId: v.device, seq: BigInt(v.seq), keyId: v.key_id })
    expect(Buffer.from(env.value.nonce).toString('hex')).toBe(v.nonce_hex)
    expect(Buffer.from(env.value.ciphertext).toString('hex')).toBe(v.ciphertext_hex)
    const ad = associatedData(v.tenant, v.device, v.stream, env.value.seq, env.value.keyId)
    expect(ad.toString('hex')).toBe(v.associated_data_hex)
    const key = Buffer.from(v.key_base64url, 'base64url')
    expect(key.toString('hex')).toBe(v.key_hex)
    const plain = open(prepareKey(key), env.value.nonce, env.value.ciphertext, ad)
    expect(plain?.toString('hex')).toBe(v.plaintext_hex)
    const payload = decodePayload(v.stream, plain!, nowFor(v))
    if (!payload.ok) throw new Error(payload.detail)
    const type = TYPES[v.stream]
    expect(type.toObject(type.fromObject(payload.value.msg as unknown as Record<string, unknown>), { longs: String })).toEqual(camelKeys(v.message))
  })

  it.each(file.vectors.map((v) => [v.name, v] as const))('%s: re-seals to the same bytes with the given nonce', (_name, v) => {
    const key = Buffer.from(v.key_hex, 'hex')
    const type = TYPES[v.stream]
    const plaintext = encodePayload(v.stream, type.toObject(type.fromObject(camelKeys(v.message) as Record<string, unknown>)) as never)
    expect(Buffer.from(plaintext).toString('hex')).toBe(v.plaintext_hex)
    const sealer = new DeviceSealer({ tenant: v.tenant, device: v.device, keyId: v.key_id, key })
    expect(Buffer.from(sealer.sealRaw(v.stream, BigInt(v.seq), plaintext, hex(v.nonce_hex))).toString('hex')).toBe(v.mqtt_payload_hex)
    // an implementation we did not write agrees on the AEAD output
    const byNoble = xchacha20poly1305(key, hex(v.nonce_hex), hex(v.associated_data_hex)).encrypt(plaintext)
    expect(Buffer.from(byNoble).toString('hex')).toBe(v.ciphertext_hex)
  })
})
