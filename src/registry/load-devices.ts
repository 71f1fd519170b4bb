/**
 * The devices as the store holds them, read once at start: the current row of
 * each, its patient bindings over time, and its payload keys (unwrapped with
 * the master key, held only in memory).
 */
import { prepareKey, unwrapKey } from '../crypto/index.ts'
import type { DeviceId, PatientId, TenantId } from '../ids.ts'
import { selectRows, type StorageConnection } from '../storage/index.ts'
import type { Family } from './families.ts'
import type { DeviceRecord } from './types.ts'

export async function loadDevices (conn: StorageConnection, masterKey: Uint8Array): Promise<DeviceRecord[]> {
  const t = conn.table
  const devices = new Map<DeviceId, DeviceRecord>()
  type DeviceRow = { tenant_id: string; device_id: string; family: Family; patient_id: string; secret_hash: string; gateway_id: string; revoked_ms: string | null }
  for (const row of await selectRows<DeviceRow>(conn, `SELECT tenant_id, device_id, family, patient_id, secret_hash, gateway_id,
    toString(toUnixTimestamp64Milli(revoked_at)) AS revoked_ms FROM ${t('devices')} FINAL`)) {
    const patient = row.patient_id === '' ? null : row.patient_id as PatientId
    devices.set(row.device_id as DeviceId, {
      tenant: row.tenant_id as TenantId,
      device: row.device_id as DeviceId,
      family: row.family,
      patient,
      bindings: [],
      gateway: row.gateway_id === '' ? null : row.gateway_id as DeviceId,
      secretHash: row.secret_hash,
      keys: new Map(),
      revokedAtMs: row.revoked_ms === null ? null : Number(row.revoked_ms),
    })
  }
  type BindingRow = { tenant_id: string; device_id: string; patient_id: string; from_ms: string }
  for (const row of await selectRows<BindingRow>(conn, `SELECT tenant_id, device_id, patient_id, toUnixTimestamp64Milli(valid_from) AS from_ms
    FROM ${t('device_bindings')} ORDER BY tenant_id, device_id, valid_from, recorded_at`)) {
    const d = devices.get(row.device_id as DeviceId)
    if (d === undefined || d.tenant !== row.tenant_id) continue
    d.bindings.push({ fromMs: Number(row.from_ms), patient: row.patient_id === '' ? null : row.patient_id as PatientId })
    d.patient = d.bindings[d.bindings.length - 1]!.patient
  }
  type KeyRow = { tenant_id: string; device_id: string; key_id: number; wrapped_key: string; not_after: string | number | null }
  for (const row of await selectRows<KeyRow>(conn, `SELECT tenant_id, device_id, key_id, wrapped_key, toUnixTimestamp64Milli(not_after) AS not_after
    FROM ${t('device_keys')} FINAL`)) {
    const d = devices.get(row.device_id as DeviceId)
    if (d === undefined || d.tenant !== row.tenant_id) continue
    const keyId = Number(row.key_id)
    const aead = prepareKey(unwrapKey(masterKey, row.tenant_id, row.device_id, keyId, row.wrapped_key))
    d.keys.set(keyId, { aead, notAfterMs: row.not_after === null ? null : Number(row.not_after) })
  }
  return [...devices.values()]
}
