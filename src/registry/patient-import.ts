/**
 * Bulk registration of patients with their consent grants: a care
 * organisation's list on its first day (or the simulator's demo fleet), in one
 * insert of patients and one of consent events instead of a request per
 * patient and grant. All or nothing: an id that does not parse refuses the
 * whole list. Idempotent by patient: one already registered is not inserted
 * again, and a grant already in force for its purpose and category is not
 * recorded twice, so a list sent again changes nothing.
 */
import type { Category, ConsentIndex, Purpose } from '../consent/index.ts'
import { insertRows, type StorageConnection } from '../storage/index.ts'
import { patientId, type TenantId } from '../ids.ts'

export interface PatientImportItem {
  patient: string
  grants?: Array<{ category: Category; purpose?: Purpose; validFromMs?: number }>
}

export interface PatientImportResult { created: number; unchanged: number; grants: number }

export interface PatientImportDeps {
  conn: StorageConnection
  consent: ConsentIndex
  tenant: TenantId
  has: (patient: string) => boolean
  /** Registers the patients once their rows are inserted. */
  note: (patients: string[]) => void
  /**
   * Several nodes (VF_REDIS_URL): hands the rows just stored to the change feed, which resolves once
   * every live node has applied them, as every other registry and consent write does.
   */
  replicate?: ((table: string, rows: ReadonlyArray<Record<string, unknown>>) => Promise<void>) | undefined
}

export async function importPatients (deps: PatientImportDeps, items: PatientImportItem[], by: { recordedBy: string; source: string }, nowMs = Date.now()): Promise<PatientImportResult> {
  const { tenant, consent } = deps
  const ids = items.map((it) => patientId(it.patient)) // throws on a bad id: nothing is written
  const fresh = [...new Set(ids.filter((p) => !deps.has(p)))]
  const events: Array<Parameters<ConsentIndex['apply']>[0]> = []
  const next = new Map<string, number>()
  const seen = new Set<string>()
  for (const [i, it] of items.entries()) {
    const patient = ids[i]!
    for (const g of it.grants ?? []) {
      const purpose = g.purpose ?? 'care'
      const k = `${patient}\0${purpose}\0${g.category}`
      // once per use in this list, and not again where a grant is in force already
      if (seen.has(k)) continue
      seen.add(k)
      if (consent.lookup(tenant, patient, purpose, g.category, nowMs) !== null) continue
      const version = next.get(patient) ?? consent.nextVersion(tenant, patient)
      next.set(patient, version + 1)
      events.push({ tenant, patient, purpose, category: g.category, action: 'grant', version, recordedBy: by.recordedBy, source: by.source, recordedAtMs: nowMs, validFromMs: Math.min(g.validFromMs ?? nowMs, nowMs) })
    }
  }
  if (fresh.length > 0) {
    const rows = fresh.map((p) => ({ tenant_id: tenant, patient_id: p, birth_date: null, created_at: nowMs }))
    await insertRows(deps.conn, 'patients', rows)
    await deps.replicate?.('patients', rows)
  }
  deps.note(fresh)
  if (events.length > 0) {
    const rows = events.map((e) => ({
      tenant_id: tenant, patient_id: e.patient, purpose: e.purpose, category: e.category, action: e.action, version: e.version,
      recorded_by: e.recordedBy, source: e.source, recorded_at: e.recordedAtMs, valid_from: e.validFromMs,
    }))
    await insertRows(deps.conn, 'consent_events', rows)
    // a grant starts once it is in the log (consent-log.ts); on every node once the feed has it there
    for (const e of events) consent.apply(e)
    await deps.replicate?.('consent_events', rows)
  }
  return { created: fresh.length, unchanged: new Set(ids).size - fresh.length, grants: events.length }
}
