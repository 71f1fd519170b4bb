/**
 * Generates docs/test-vectors.json: for each stream, a sealed frame built from
 * fixed inputs (key, nonce, message, ids, sequence number), with every
 * intermediate a device maker needs to check their own code against: the
 * payload's protobuf bytes, the associated data, the ciphertext and the whole
 * MQTT payload. Deterministic: running it again writes the same file, and
 * test/test-vectors.test.ts fails if the file and this script disagree.
 *
 *   npm run vectors            # rewrite docs/test-vectors.json
 *   npm run vectors -- --check # exit 1 if the file is out of date
 *
 * Keys and nonces here are public: never use them on a real device.
 */
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { DeviceSealer, encodePayload } from '../devices/index.ts'
import { associatedData } from '../src/crypto/index.ts'
import {
  AlarmEventType, BraceletBatchType, DeviceStatusType, SpotMeasurementType, type PayloadByStream, type Stream,
} from '../src/decode/index.ts'

export const VECTORS_PATH = fileURLToPath(new URL('../docs/test-vectors.json', import.meta.url))

/** 2026-01-15T09:30:00Z: a fixed time (a node checks device times against its own clock, see docs/device-protocol.md). */
const T = Date.UTC(2026, 0, 15, 9, 30)

interface Case<S extends Stream> {
  name: string
  note: string
  stream: S
  tenant: string
  device: string
  keyId: number
  seq: bigint
  message: PayloadByStream[S]
}

// every float below is exactly representable as a 32-bit float, so the message as JSON encodes to the same bytes anywhere
const CASES = [
  {
    name: 'vitals', note: 'A Corsano bracelet batch: one minute, heart rate every 15 s with quality, SpO2 once, two sleep epochs.',
    stream: 'vitals', tenant: 'care-demo', device: 'brc-0001', keyId: 1, seq: 1n,
    message: {
      windowStartMs: T, windowMs: 60_000,
      heartRate: { offsetMs: 0, intervalMs: 15_000, values: [72, 73, 71.5, 70] }, heartRateQuality: [4, 4, 3, 4],
      spo2: { offsetMs: 30_000, intervalMs: 60_000, values: [97] },
      sleep: [{ offsetMs: 0, durationMs: 30_000, stage: 2 }, { offsetMs: 30_000, durationMs: 30_000, stage: 3 }],
      batteryPercent: 81,
    },
  } satisfies Case<'vitals'>,
  {
    name: 'spot', note: 'A cVitals spot measurement: blood pressure and pulse from one meter (absent fields are left out).',
    stream: 'spot', tenant: 'care-demo', device: 'cvk-0001', keyId: 1, seq: 42n,
    message: { measuredAtMs: T + 5000, meterModel: 'A&D UA-651BLE', systolic: 128, diastolic: 82, pulse: 66 },
  } satisfies Case<'spot'>,
  {
    name: 'alarm', note: 'A cAlarm button press with a location.',
    stream: 'alarm', tenant: 'care-demo', device: 'cal-0001', keyId: 2, seq: 7n,
    message: { occurredAtMs: T + 10_000, kind: 1, batteryPercent: 64, location: { latitude: 52.0907, longitude: 5.1214, accuracyM: 12.5 } },
  } satisfies Case<'alarm'>,
  {
    name: 'status', note: 'Device status of a cAlarm.',
    stream: 'status', tenant: 'care-demo', device: 'cal-0001', keyId: 2, seq: 8n,
    message: {
      reportedAtMs: T + 15_000, model: 'cAlarm 2', firmware: '2.4.1', serialNumber: 'CA2-000123', batteryPercent: 64, lastSyncMs: T,
      diagnostics: ['boot ok'],
    },
  } satisfies Case<'status'>,
  {
    name: 'alarm-seq-max', note: 'A heartbeat with the largest sequence number, 2^64 - 1: seq is a full uint64 in the envelope and the associated data.',
    stream: 'alarm', tenant: 'care-demo', device: 'cal-0001', keyId: 2, seq: 2n ** 64n - 1n,
    message: { occurredAtMs: T + 20_000, kind: 4, batteryPercent: 63 },
  } satisfies Case<'alarm'>,
] as const

const TYPES = { vitals: BraceletBatchType, spot: SpotMeasurementType, alarm: AlarmEventType, status: DeviceStatusType } as const

/** Fixed bytes from a label: SHA-256, cut to length. */
function fixed (label: string, n: number): Buffer {
  return createHash('sha256').update(`vitalflow test vector ${label}`).digest().subarray(0, n)
}

const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
function snakeKeys (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [snake(k), snakeKeys(x)]))
  return v
}

export interface Vector {
  name: string
  note: string
  stream: Stream
  tenant: string
  device: string
  topic: string
  key_id: number
  /** The payload key as enrollment prints it (base64url, no padding), and the same 32 bytes in hex. */
  key_base64url: string
  key_hex: string
  /** Decimal text: a uint64 does not fit a JSON number for every reader. */
  seq: string
  nonce_hex: string
  /** The payload message with proto field names; 64-bit integers as decimal text, enums as numbers. */
  message: Record<string, unknown>
  plaintext_hex: string
  associated_data_hex: string
  /** The AEAD output: ciphertext followed by the 16-byte Poly1305 tag. */
  ciphertext_hex: string
  /** The whole MQTT PUBLISH payload: the encoded Envelope. */
  mqtt_payload_hex: string
}

function buildVectors (): { description: string; generator: string; associated_data: string; vectors: Vector[] } {
  const vectors = CASES.map((c): Vector => {
    const key = fixed(`key ${c.device} ${c.keyId}`, 32)
    const nonce = fixed(`nonce ${c.name}`, 24)
    const plaintext = encodePayload(c.stream, c.message as never)
    const type = TYPES[c.stream]
    const message = snakeKeys(type.toObject(type.decode(plaintext), { longs: String, enums: Number })) as Record<string, unknown>
    const ad = associatedData(c.tenant, c.device, c.stream, c.seq, c.keyId)
    const sealer = new DeviceSealer({ tenant: c.tenant, device: c.device, keyId: c.keyId, key })
    const frame = sealer.sealRaw(c.stream, c.seq, plaintext, nonce)
    const ciphertext = frame.subarray(frame.length - (plaintext.length + 16))
    return {
      name: c.name, note: c.note, stream: c.stream, tenant: c.tenant, device: c.device, topic: `v1/${c.tenant}/${c.device}/${c.stream}`,
      key_id: c.keyId, key_base64url: key.toString('base64url'), key_hex: key.toString('hex'), seq: c.seq.toString(),
      nonce_hex: nonce.toString('hex'), message, plaintext_hex: Buffer.from(plaintext).toString('hex'),
      associated_data_hex: ad.toString('hex'), ciphertext_hex: Buffer.from(ciphertext).toString('hex'),
      mqtt_payload_hex: Buffer.from(frame).toString('hex'),
    }
  })
  return {
    description: 'vitalflow device protocol test vectors (docs/device-protocol.md). Public keys and nonces: never use them on a real device.',
    generator: 'scripts/test-vectors.ts (npm run vectors)',
    associated_data: '"vf1" 0x00 tenant 0x00 device 0x00 stream 0x00 seq (8 bytes, big-endian) key_id (4 bytes, big-endian)',
    vectors,
  }
}

export function vectorsJson (): string {
  return `${JSON.stringify(buildVectors(), null, 2)}\n`
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const json = vectorsJson()
  if (process.argv.includes('--check')) {
    let current = ''
    try { current = readFileSync(VECTORS_PATH, 'utf8') } catch { /* no file yet: out of date */ }
    if (current !== json) { console.error(`${VECTORS_PATH} is out of date: run npm run vectors`); process.exit(1) }
    console.log(`${VECTORS_PATH} is up to date`)
  } else {
    writeFileSync(VECTORS_PATH, json)
    console.log(`wrote ${VECTORS_PATH}`)
  }
}
