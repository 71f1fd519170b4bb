/**
 * The consent log: grants and withdrawals, append-only and versioned, in
 * ClickHouse (this log is the opt-in register the privacy terms ask for),
 * applied to the in-memory consent index the hot path reads.
 */
import type { Category, ConsentEvent, ConsentIndex, Purpose } from '../consent/index.ts'
import type { PatientId, TenantId } from '../ids.ts'
import { insertRows, selectRows, type StorageConnection } from '../storage/index.ts'

export interface ConsentInput {
  tenant: string; patient: string; purpose: Purpose; category: Category; action: 'grant' | 'withdraw'; recordedBy: string; source: string
  /** When a grant was given, if before now (a signed paper form recorded later). Withdrawals always take effect now. */
  validFromMs?: number | undefined
}

/** Replays the whole log into the index, in version order per patient. */
export async function loadConsentLog (conn: StorageConnection, consent: ConsentIndex): Promise<void> {
  type ConsentRow = { tenant_id: string; patient_id: string; purpose: Purpose; category: Category; action: 'grant' | 'withdraw'; version: number; recorded_by: string; source: string; recorded_ms: number; valid_ms: number }
  const rows = await selectRows<ConsentRow>(conn, `SELECT tenant_id, patient_id, purpose, category, action, version, recorded_by, source,
    toUnixTimestamp64Milli(recorded_at) AS recorded_ms, toUnixTimestamp64Milli(valid_from) AS valid_ms FROM ${conn.table('consent_events')} ORDER BY tenant_id, patient_id, version`)
  for (const row of rows) {
    consent.apply({
      tenant: row.tenant_id, patient: row.patient_id, purpose: row.purpose, category: row.category, action: row.action,
      version: Number(row.version), recordedBy: row.recorded_by, source: row.source, recordedAtMs: Number(row.recorded_ms), validFromMs: Number(row.valid_ms),
    })
  }
}

/** Appends a checked event (known tenant and patient, validFromMs not in the future) to the log and applies it to the index. */
export async function appendConsent (conn: StorageConnection, consent: ConsentIndex, tenant: TenantId, patient: PatientId, input: ConsentInput, nowMs: number, validFromMs: number): Promise<ConsentEvent> {
  const event: ConsentEvent = {
    tenant, patient, purpose: input.purpose, category: input.category, action: input.action,
    version: consent.nextVersion(tenant, patient), recordedBy: input.recordedBy, source: input.source, recordedAtMs: nowMs, validFromMs,
  }
  // a withdrawal stops collection before it is even written down (the very next message, also one already
  // in the pipeline); a grant starts only once it is in the log. Either way the log and the index agree after.
  if (event.action === 'withdraw') consent.apply(event)
  await insertRows(conn, 'consent_events', [consentRow(event)])
  if (event.action === 'grant') consent.apply(event)
  return event
}

/** The stored row of a consent event. */
export function consentRow (e: ConsentEvent): Record<string, unknown> {
  return {
    tenant_id: e.tenant, patient_id: e.patient, purpose: e.purpose, category: e.category, action: e.action, version: e.version,
    recorded_by: e.recordedBy, source: e.source, recorded_at: e.recordedAtMs, valid_from: e.validFromMs,
  }
}

/** The event a stored row (as consentRow wrote it) records. */
export function consentEventOf (r: Record<string, unknown>): ConsentEvent {
  return {
    tenant: String(r['tenant_id']), patient: String(r['patient_id']), purpose: r['purpose'] as Purpose, category: r['category'] as Category,
    action: r['action'] === 'grant' ? 'grant' : 'withdraw', version: Number(r['version']), recordedBy: String(r['recorded_by']), source: String(r['source']),
    recordedAtMs: Number(r['recorded_at']), validFromMs: Number(r['valid_from']),
  }
}
