/** What the registry holds of a device, and what an enrolment hands out. */
import type { AeadKey } from '../crypto/index.ts'
import type { DeviceId, PatientId, TenantId } from '../ids.ts'
import type { Binding } from './bindings.ts'
import type { ImportLineError } from './device-import.ts'
import type { Family } from './families.ts'

/** A payload key; a rotated-out key stays valid until notAfterMs so messages sealed before the rotation still open. */
export interface DeviceKey { readonly aead: AeadKey; notAfterMs: number | null }

export interface DeviceRecord {
  readonly tenant: TenantId
  readonly device: DeviceId
  readonly family: Family
  /** The current binding's patient (the last of `bindings`). */
  patient: PatientId | null
  /** Patient bindings over time, oldest first: data is attributed by the binding valid at its time. */
  bindings: Binding[]
  /** The gateway phone allowed to publish on this device's behalf. */
  gateway: DeviceId | null
  secretHash: string
  readonly keys: Map<number, DeviceKey>
  /** When the device was revoked (lost, stolen): it is refused at CONNECT and every message of it after. */
  revokedAtMs: number | null
}

/** What an enrollment hands to the device, once. Never stored in this form. */
export interface Enrollment {
  tenant: TenantId
  device: DeviceId
  family: Family
  patient: PatientId | null
  secret: string
  keyId: number
  /** 32-byte payload key, base64url. */
  key: string
}

/** What an import answers: the enrolments (one-time secrets and keys, for the provisioning line), or why nothing was applied. */
export interface ImportResult {
  applied: boolean
  enrolled: Array<Enrollment & { line: number }>
  unchanged: Array<{ line: number; device: string }>
  errors: ImportLineError[]
}

/** Several nodes (src/cluster): each write's rows once stored here (resolves once every live node has them); Registry.reload() takes another node's change (device records in place, so a connected session sees it). */
export interface Replication {
  replicate?: (table: string, rows: ReadonlyArray<Record<string, unknown>>) => Promise<void>
}
