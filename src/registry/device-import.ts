/**
 * Bulk enrolment: a manufacturer's or rollout team's file of devices (NDJSON or
 * CSV), checked line by line against itself and the registry before anything is
 * written. All or nothing: a file with any bad line changes nothing and every
 * bad line is reported with its number and reason, so it can be fixed and sent
 * again whole. Idempotent by device id: a line for a device already enrolled
 * exactly so (same tenant, family, patient, gateway) is `unchanged` (no new
 * secret), so rerunning a file that was applied changes nothing; a line that
 * disagrees with what is enrolled is a conflict, never a silent re-enrolment.
 */
import { isEnrollableDeviceId, isId } from '../ids.ts'
import { FAMILIES, type Family } from './families.ts'

/** The largest file: a tenant's whole fleet (200,000 devices) in one request. */
export const IMPORT_MAX_LINES = 200_000
/** ~100 bytes a line for the largest file, with room. */
export const IMPORT_MAX_BYTES = 32 * 1024 * 1024

export type ImportFormat = 'ndjson' | 'csv'

export interface ImportItem { line: number; device: string; family: Family; patient: string | null; gateway: string | null }

export interface ImportLineError {
  line: number
  /** The device id of the line, when it had a readable one. */
  device?: string
  code: 'ING_ERR_INVALID' | 'ING_ERR_CONFLICT' | 'ING_ERR_NOT_FOUND' | 'ING_ERR_TOO_LARGE'
  message: string
}

export interface ParsedImport { items: ImportItem[]; errors: ImportLineError[] }

const CSV_COLUMNS = ['device', 'family', 'patient', 'gateway'] as const

/** Splits a file into its lines, numbered from 1 as an editor shows them; blank lines are skipped. */
function lines (text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = []
  const all = text.split('\n')
  for (let i = 0; i < all.length; i++) {
    const t = all[i]!.replace(/\r$/, '')
    if (t.trim() !== '') out.push({ line: i + 1, text: t })
  }
  return out
}

/** One line's fields, checked for shape only (ids, family); what they refer to is checked by `planImport`. */
function item (line: number, raw: Record<string, unknown>): ImportItem | ImportLineError {
  const device = raw['device']
  if (!isEnrollableDeviceId(device)) return { line, code: 'ING_ERR_INVALID', message: 'device: an id of 1-64 letters, digits, _ or - is required, not a property name of every JavaScript object (constructor, __proto__, ...)' }
  const fail = (message: string): ImportLineError => ({ line, device, code: 'ING_ERR_INVALID', message })
  const family = raw['family']
  if (typeof family !== 'string' || !(FAMILIES as readonly string[]).includes(family)) return fail(`family: one of ${FAMILIES.join(', ')}`)
  const optional = (key: 'patient' | 'gateway'): string | null | ImportLineError => {
    const v = raw[key]
    if (v === undefined || v === null || v === '') return null
    return isId(v) ? v : fail(`${key}: an id of 1-64 letters, digits, _ or - (or nothing)`)
  }
  const patient = optional('patient')
  if (typeof patient === 'object' && patient !== null) return patient
  const gateway = optional('gateway')
  if (typeof gateway === 'object' && gateway !== null) return gateway
  const unknown = Object.keys(raw).filter((k) => !(CSV_COLUMNS as readonly string[]).includes(k))
  if (unknown.length > 0) return fail(`unknown field ${unknown[0]!.slice(0, 40)}`)
  return { line, device, family: family as Family, patient, gateway }
}

/** Reads a file's lines. Never throws: what cannot be read is a line error. */
export function parseImport (text: string, format: ImportFormat): ParsedImport {
  const items: ImportItem[] = []
  const errors: ImportLineError[] = []
  if (Buffer.byteLength(text) > IMPORT_MAX_BYTES) {
    return { items, errors: [{ line: 0, code: 'ING_ERR_TOO_LARGE', message: `file larger than ${IMPORT_MAX_BYTES} bytes: split it` }] }
  }
  let rows = lines(text)
  let header: string[] = []
  if (format === 'csv') {
    const first = rows[0]
    header = first === undefined ? [] : first.text.split(',').map((c) => c.trim())
    const missing = ['device', 'family'].filter((c) => !header.includes(c))
    const extra = header.filter((c) => !(CSV_COLUMNS as readonly string[]).includes(c))
    if (first === undefined || missing.length > 0 || extra.length > 0 || new Set(header).size !== header.length) {
      return { items, errors: [{ line: first?.line ?? 1, code: 'ING_ERR_INVALID', message: `a header line of ${CSV_COLUMNS.join(',')} is required (patient and gateway may be left out)` }] }
    }
    rows = rows.slice(1)
  }
  if (rows.length > IMPORT_MAX_LINES) {
    return { items, errors: [{ line: 0, code: 'ING_ERR_TOO_LARGE', message: `more than ${IMPORT_MAX_LINES} devices: split the file` }] }
  }
  for (const { line, text: t } of rows) {
    let raw: unknown
    if (format === 'ndjson') {
      try { raw = JSON.parse(t) } catch { errors.push({ line, code: 'ING_ERR_INVALID', message: 'not a JSON object' }); continue }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) { errors.push({ line, code: 'ING_ERR_INVALID', message: 'not a JSON object' }); continue }
    } else {
      const cells = t.split(',').map((c) => c.trim())
      if (cells.length !== header.length) { errors.push({ line, code: 'ING_ERR_INVALID', message: `${cells.length} fields, the header has ${header.length}` }); continue }
      raw = Object.fromEntries(header.map((h, i) => [h, cells[i]]))
    }
    const r = item(line, raw as Record<string, unknown>)
    if ('code' in r) errors.push(r)
    else items.push(r)
  }
  return { items, errors }
}

/** What the plan needs to know of the registry. */
export interface ImportView {
  hasPatient: (tenant: string, patient: string) => boolean
  /** The enrolled device of that id, in any tenant. */
  device: (id: string) => { tenant: string; family: Family; patient: string | null; gateway: string | null } | undefined
  /** Ids being enrolled right now by another request. */
  enrolling: (id: string) => boolean
}

export interface ImportPlan { enrol: ImportItem[]; unchanged: ImportItem[]; errors: ImportLineError[] }

/** Checks every item against the file itself and the registry; nothing is written. */
export function planImport (tenant: string, items: ImportItem[], view: ImportView): ImportPlan {
  const enrol: ImportItem[] = []
  const unchanged: ImportItem[] = []
  const errors: ImportLineError[] = []
  const firstLine = new Map<string, number>()
  // gateways the file itself enrols, usable by the lines after them
  const newGateways = new Set<string>()
  for (const it of items) {
    const fail = (code: ImportLineError['code'], message: string): void => { errors.push({ line: it.line, device: it.device, code, message }) }
    const seen = firstLine.get(it.device)
    if (seen !== undefined) { fail('ING_ERR_INVALID', `device id already on line ${seen}`); continue }
    firstLine.set(it.device, it.line)
    if (it.patient !== null && !view.hasPatient(tenant, it.patient)) { fail('ING_ERR_NOT_FOUND', 'patient not registered with this tenant'); continue }
    if (it.gateway !== null) {
      const g = view.device(it.gateway)
      const isGateway = g !== undefined ? g.tenant === tenant && g.family === 'gateway' : newGateways.has(it.gateway)
      if (!isGateway) { fail('ING_ERR_NOT_FOUND', 'gateway: no gateway phone of that id in this tenant (or on an earlier line)'); continue }
    }
    const existing = view.device(it.device)
    if (existing !== undefined) {
      // another tenant's device is not described: only that the id is taken
      if (existing.tenant !== tenant) fail('ING_ERR_CONFLICT', 'device id already enrolled')
      else if (existing.family !== it.family || existing.patient !== it.patient || existing.gateway !== it.gateway) {
        fail('ING_ERR_CONFLICT', 'device already enrolled with another family, patient or gateway (change a binding with bind, not by import)')
      } else unchanged.push(it)
      continue
    }
    if (view.enrolling(it.device)) { fail('ING_ERR_CONFLICT', 'device id being enrolled by another request'); continue }
    if (it.family === 'gateway') newGateways.add(it.device)
    enrol.push(it)
  }
  return { enrol, unchanged, errors }
}
