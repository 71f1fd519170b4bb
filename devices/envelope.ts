/**
 * Builds the sealed frame a device publishes: payload protobuf → XChaCha20-
 * Poly1305 under the device key, with the associated data the ingest side
 * rebuilds from the topic and envelope. Shared by the simulator and the tests.
 */
import { associatedData, prepareKey, randomNonce, seal, type AeadKey } from '../src/crypto/index.ts'
import {
  AlarmEventType, BraceletBatchType, DeviceStatusType, SpotMeasurementType, encodeEnvelope, type PayloadByStream, type Stream,
} from '../src/decode/index.ts'

export interface DeviceCredentials {
  tenant: string
  device: string
  keyId: number
  /** Raw 32-byte payload key as issued at enrollment. */
  key: Uint8Array
}

const TYPES = { vitals: BraceletBatchType, spot: SpotMeasurementType, alarm: AlarmEventType, status: DeviceStatusType } as const

export function encodePayload<S extends Stream> (stream: S, msg: PayloadByStream[S]): Uint8Array {
  const type = TYPES[stream]
  return type.encode(type.fromObject(msg)).finish()
}

/**
 * A device's sealing state: its key and its next sequence number. The counter
 * is a number (the simulator's fleets stay far below 2^53); sealRaw takes any
 * uint64 as a bigint.
 */
export class DeviceSealer {
  private readonly aead: AeadKey
  constructor (readonly creds: DeviceCredentials, public nextSeq = 1) {
    this.aead = prepareKey(creds.key)
  }

  /** Seals one payload message into an envelope, consuming a sequence number. */
  seal<S extends Stream> (stream: S, msg: PayloadByStream[S]): { topic: string; seq: number; frame: Uint8Array } {
    const seq = this.nextSeq++
    return { topic: `v1/${this.creds.tenant}/${this.creds.device}/${stream}`, seq, frame: this.sealRaw(stream, seq, encodePayload(stream, msg)) }
  }

  /**
   * Seals already-encoded payload bytes under an explicit sequence number (tests use this for hostile frames
   * and seq above 2^53). The nonce is random unless given (only the test vectors give one: never reuse a nonce).
   */
  sealRaw (stream: Stream, seq: bigint | number, payload: Uint8Array, nonce: Uint8Array = randomNonce()): Uint8Array {
    const { tenant, device, keyId } = this.creds
    const ciphertext = seal(this.aead, nonce, payload, associatedData(tenant, device, stream, seq, keyId))
    return encodeEnvelope({ version: 1, deviceId: device, seq, keyId, nonce, ciphertext })
  }
}
