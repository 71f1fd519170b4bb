/** The access audit (NEN 7513): who read or acted on whose data, when, from where. */
import { insertRows, type StorageConnection } from '../storage/index.ts'

/** Who asks: every rights call is logged in the access log under this. */
export interface Actor { user: string; role: string; remoteAddress?: string | undefined }

/** Logs a read of (or an action on) personal data: one row per patient, in one insert. */
export async function audit (conn: StorageConnection, tenant: string, actor: Actor, patient: string | readonly string[], action: string, detail: string): Promise<void> {
  const patients = typeof patient === 'string' ? [patient] : patient
  if (patients.length === 0) return
  const ts = Date.now()
  await insertRows(conn, 'access_log', patients.map((p) => ({
    tenant_id: tenant, user_id: actor.user, role: actor.role, patient_id: p, action, detail: detail.slice(0, 500), remote_address: actor.remoteAddress ?? '', ts,
  })))
}
