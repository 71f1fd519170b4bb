/**
 * Pseudonymous identifiers. Branded so a tenant id can never be passed where a
 * patient id is expected. All ids share one alphabet: it is safe in MQTT topic
 * levels, TSV, file names and associated data (no separators, no NUL).
 */
import { VitalflowError } from './errors.ts'

export type TenantId = string & { readonly __brand: 'TenantId' }
export type PatientId = string & { readonly __brand: 'PatientId' }
export type DeviceId = string & { readonly __brand: 'DeviceId' }

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export function isId (s: unknown): s is string {
  return typeof s === 'string' && ID_PATTERN.test(s)
}

/**
 * An id a new device may be enrolled under: an id that is not a name every JavaScript object has
 * (`constructor`, `__proto__`, `toString`, ...). The broker (aedes 2.0.0-beta.1) keeps clients in a
 * plain object keyed by client id, which is the device id; a device with such an id would read back
 * as present before it ever connected (GHSA-52qw-whmv-87c5, fixed in aedes 1.2, not in the beta).
 */
export function isEnrollableDeviceId (s: unknown): s is string {
  return isId(s) && !Object.hasOwn(Object.prototype, s)
}

export class InvalidIdError extends VitalflowError<'ING_ERR_ID'> {
  constructor (kind: string, value: unknown) {
    super('ING_ERR_ID', `${kind} id must match ${ID_PATTERN.source}${kind === 'new device' ? ' and not be a property name of every JavaScript object' : ''} (got ${typeof value === 'string' ? `${value.length} chars` : typeof value})`)
  }
}

function brand<T extends string> (kind: string) {
  return (s: unknown): T => {
    if (!isId(s)) throw new InvalidIdError(kind, s)
    return s as T
  }
}
export const tenantId = brand<TenantId>('tenant')
export const patientId = brand<PatientId>('patient')
export const deviceId = brand<DeviceId>('device')

/** A device id to enrol (see isEnrollableDeviceId). */
export function newDeviceId (s: unknown): DeviceId {
  if (!isEnrollableDeviceId(s)) throw new InvalidIdError('new device', s)
  return s as DeviceId
}
