/**
 * The FHIR R4 form of the export: one Bundle (type collection), entries written
 * as they are made, following the R4 vital-signs profiles and the Personal
 * Health Device IG (codes in codes.ts).
 *
 * - The Bundle opens with the Patient (its pseudonymous id as identifier, nothing
 *   else) and the CodeSystem of our own codes, and closes with a Device for every
 *   device an Observation names and every gateway phone of those.
 * - Every Observation has `subject` (the Patient), `device` (the measuring device)
 *   and, when the registry names one, the PHD gateway extension (the phone the
 *   device publishes through; the registry holds the current gateway, not one per message).
 * - Vital samples and spot measurements are Observations with a UCUM valueQuantity;
 *   systolic and diastolic of one reading are components of the blood-pressure panel;
 *   a sleep epoch is the duration of its stage. With `sampled`, a bracelet series
 *   (one metric of one message, regularly spaced) is one Observation with
 *   valueSampledData instead of one per sample.
 * - Alarm events are Observations of our `alarm-event` code with the kind as value,
 *   battery and (when consented) location as components: R4 has no alarm resource,
 *   and the PHD IG reports device events as observations. Device status reports are
 *   battery-level Observations (MDC_ATTR_VAL_BATT_CHARGE, as the PHD IG reports a
 *   battery), the last sync as a component and diagnostic lines as notes; model,
 *   firmware and serial number of the latest report go on the Device.
 *
 * Each Observation's identifier is the table's urn with `device/seq/<what>`, so a
 * value can be matched to its stored row: idx (vital samples; `first-last` for a
 * sampled series), the column (spot measurements; blood_pressure for the panel),
 * `event` (alarm events) or `status` (device status). State kept while streaming
 * is bounded by the number of devices and, with `sampled`, one message's series per metric.
 */
import { createHash, randomUUID } from 'node:crypto'
import { BRACELET_SERIES } from '../catalogue/index.ts'
import { TELEMETRY_TABLES, type StorageConnection } from '../storage/index.ts'
import {
  ALARM_EVENT, ALARM_KINDS, BATTERY, BLOOD_PRESSURE_PANEL, FHIR_CATEGORY, FIRMWARE_REVISION, GATEWAY_EXTENSION, LAST_SYNC, LOCATION_CODES,
  SLEEP_UNIT, SPOT_CODES, UCUM, VITAL_CODES, sleepStageCode, vitalflowCodeSystem, vitalflowConcept, type Code,
} from './codes.ts'
import { SPOT_AT, V, at, iso, type Format, type Out, type Row, type Value } from './export-rows.ts'

/** What the registry knows of a device: its family and the gateway it publishes through ('' = none). */
export interface RegistryDevice { family: string; gateway: string }

/** The registry's devices ever bound to the patient, and their gateways. */
export async function registryDevices (
  conn: StorageConnection, params: Record<string, unknown>, rows: (query: string, params: Record<string, unknown>) => Promise<Row[]>,
): Promise<Map<string, RegistryDevice>> {
  const bound = `SELECT device_id FROM ${conn.table('device_bindings')} WHERE tenant_id = {tenant:String} AND patient_id = {patient:String}`
  const gateways = `SELECT gateway_id FROM ${conn.table('devices')} WHERE tenant_id = {tenant:String} AND device_id IN (${bound})`
  const found = await rows(`SELECT device_id, argMax(family, updated_at), argMax(gateway_id, updated_at) FROM ${conn.table('devices')}
    WHERE tenant_id = {tenant:String} AND (device_id IN (${bound}) OR device_id IN (${gateways})) GROUP BY device_id`, { tenant: params['tenant'], patient: params['patient'] })
  return new Map(found.map((r) => [r[0] as string, { family: r[1] as string, gateway: r[2] as string }]))
}

/** A name-based UUID (RFC 9562 version 8, from SHA-256): the same device or patient gets the same fullUrl in every export. */
function nameUrl (...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex')
  const variant = (8 | (parseInt(h[16]!, 16) & 3)).toString(16)
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

interface SeenDevice {
  url: string
  reference: { reference: string; display: string }
  extension: unknown[] | undefined
  status: { model: string; firmware: string; serial: string } | null
}

/** A bracelet series being gathered into one valueSampledData Observation. */
interface Series { first: Row; code: Code; firstIdx: number; lastIdx: number; t0: number; last: number; period: number; duration: number; data: string }

const VITALS = new Map<string, Code>(Object.entries(VITAL_CODES))
/** Metrics a message carries as a regular series, so `sampled` may gather them. */
const SERIES = new Set<string>(BRACELET_SERIES.map((s) => s.metric))
const KINDS = new Map(Object.entries(ALARM_KINDS))
const A = { kind: at('alarm_events', 'kind'), battery: at('alarm_events', 'battery') }
const LOCATION = (['latitude', 'longitude', 'accuracy_m'] as const).map((c) => [LOCATION_CODES[c], at('alarm_events', c)] as const)
const S = {
  model: at('device_status', 'model'), firmware: at('device_status', 'firmware'), serial: at('device_status', 'serial_number'),
  battery: at('device_status', 'battery'), lastSync: at('device_status', 'last_sync'), diagnostics: at('device_status', 'diagnostics'),
}

const quantity = (value: Value, c: Code): Record<string, unknown> => ({ value, unit: c.unit, system: UCUM, code: c.ucum })

export interface FhirOptions { tenant: string; patient: string; sampled: boolean; devices: ReadonlyMap<string, RegistryDevice> }

export function fhir (opts: FhirOptions): Format {
  const patientUrl = nameUrl(opts.tenant, 'patient', opts.patient)
  const subject = { reference: patientUrl }
  const entry = (resource: Record<string, unknown>, fullUrl = `urn:uuid:${randomUUID()}`): string => JSON.stringify({ fullUrl, resource })
  const emit = (out: Out, resource: Record<string, unknown>): number => { out.push(',' + entry(resource)); return 1 }

  const concepts = new Map<Code, unknown>()
  const concept = (c: Code): unknown => {
    let x = concepts.get(c)
    if (x === undefined) {
      x = c.codes.length === 0 ? { text: c.text } : { coding: c.codes, text: c.text }
      concepts.set(c, x)
    }
    return x
  }

  const seen = new Map<string, SeenDevice>()
  const device = (id: string): SeenDevice => {
    let d = seen.get(id)
    if (d !== undefined) return d
    const url = nameUrl(opts.tenant, 'device', id)
    d = { url, reference: { reference: url, display: id }, extension: undefined, status: null }
    seen.set(id, d)
    const gateway = opts.devices.get(id)?.gateway ?? ''
    if (gateway !== '' && gateway !== id) d.extension = [{ url: GATEWAY_EXTENSION, valueReference: { reference: device(gateway).url, display: gateway } }]
    return d
  }

  /** An Observation of the row; effectivePeriod when it covers time (spanMs + durationMs > 0), else effectiveDateTime. */
  const observation = (row: Row, table: string, id: string, c: Code, durationMs: number, spanMs = 0): Record<string, unknown> => {
    const start = iso(row[0]!)!
    const d = device(row[1] as string)
    const o: Record<string, unknown> = { resourceType: 'Observation' }
    if (d.extension !== undefined) o['extension'] = d.extension
    o['identifier'] = [{ system: `urn:vitalflow:${table}`, value: `${String(row[1])}/${String(row[2])}/${id}` }]
    o['status'] = 'final'
    if (c.category !== null) o['category'] = FHIR_CATEGORY[c.category]
    o['code'] = concept(c)
    o['subject'] = subject
    if (spanMs + durationMs > 0) o['effectivePeriod'] = { start, end: new Date(Date.parse(start) + spanMs + durationMs).toISOString() }
    else o['effectiveDateTime'] = start
    o['device'] = d.reference
    return o
  }

  const series = new Map<string, Series>()
  const flush = (out: Out, s: Series): number => {
    const value = Number(s.data)
    if (s.firstIdx === s.lastIdx) return emit(out, { ...observation(s.first, 'vital_samples', String(s.firstIdx), s.code, s.duration), valueQuantity: quantity(value, s.code) })
    return emit(out, {
      ...observation(s.first, 'vital_samples', `${s.firstIdx}-${s.lastIdx}`, s.code, s.duration, s.last - s.t0),
      valueSampledData: { origin: { value: 0, unit: s.code.unit, system: UCUM, code: s.code.ucum }, period: s.period, dimensions: 1, data: s.data },
    })
  }
  /** Adds a sample to its metric's series, or ends that series and starts the next; returns the Observations written. */
  const gather = (out: Out, metric: string, c: Code, row: Row): number => {
    const t = Date.parse(iso(row[0]!)!)
    const idx = row[V.idx] as number
    const duration = row[V.duration] as number
    const s = series.get(metric)
    if (s !== undefined && s.first[1] === row[1] && s.first[2] === row[2] && idx === s.lastIdx + 1 && s.duration === duration &&
      (s.firstIdx === s.lastIdx ? t > s.last : t - s.last === s.period)) {
      if (s.firstIdx === s.lastIdx) s.period = t - s.last
      s.data += ` ${row[V.value] as number}`
      s.last = t
      s.lastIdx = idx
      return 0
    }
    series.set(metric, { first: row, code: c, firstIdx: idx, lastIdx: idx, t0: t, last: t, period: 0, duration, data: String(row[V.value]) })
    return s === undefined ? 0 : flush(out, s)
  }

  const vital = (row: Row, out: Out): number => {
    const metric = row[V.metric] as string
    const value = row[V.value]!
    const duration = row[V.duration] as number
    const idx = String(row[V.idx])
    if (metric === 'sleep_stage') {
      const c = sleepStageCode(value as number)
      return emit(out, { ...observation(row, 'vital_samples', idx, c, duration), valueQuantity: quantity(duration * SLEEP_UNIT.perMs, c) })
    }
    const c = VITALS.get(metric)
    // a metric missing from the code table still goes out, named
    if (c === undefined) return emit(out, { ...observation(row, 'vital_samples', idx, { codes: [], text: metric, ucum: '', unit: '', category: null }, duration), valueQuantity: { value } })
    if (opts.sampled && SERIES.has(metric)) return gather(out, metric, c, row)
    return emit(out, { ...observation(row, 'vital_samples', idx, c, duration), valueQuantity: quantity(value, c) })
  }

  const spot = (row: Row, out: Out): number => {
    let n = 0
    const component = []
    for (const [column, i] of SPOT_AT) {
      const value = row[i]!
      if (value === null) continue
      const c = SPOT_CODES[column]
      if (column === 'systolic' || column === 'diastolic') component.push({ code: concept(c), valueQuantity: quantity(value, c) })
      else n += emit(out, { ...observation(row, 'spot_measurements', column, c, 0), valueQuantity: quantity(value, c) })
    }
    if (component.length === 0) return n
    return n + emit(out, { ...observation(row, 'spot_measurements', 'blood_pressure', BLOOD_PRESSURE_PANEL, 0), component })
  }

  const alarm = (row: Row, out: Out): number => {
    const kind = row[A.kind] as string
    const code = KINDS.get(kind)
    const component: unknown[] = [{ code: concept(BATTERY), valueQuantity: quantity(row[A.battery]!, BATTERY) }]
    for (const [c, i] of LOCATION) if (row[i] !== null) component.push({ code: concept(c), valueQuantity: quantity(row[i]!, c) })
    return emit(out, {
      ...observation(row, 'alarm_events', 'event', ALARM_EVENT, 0),
      valueCodeableConcept: code === undefined ? { text: kind === '' ? 'unspecified' : kind } : vitalflowConcept(code),
      component,
    })
  }

  const status = (row: Row, out: Out): number => {
    device(row[1] as string).status = { model: row[S.model] as string, firmware: row[S.firmware] as string, serial: row[S.serial] as string }
    const o: Record<string, unknown> = { ...observation(row, 'device_status', 'status', BATTERY, 0), valueQuantity: quantity(row[S.battery]!, BATTERY) }
    const notes = (row[S.diagnostics] as string[]).filter((d) => d.trim() !== '').map((text) => ({ text }))
    if (notes.length > 0) o['note'] = notes
    const lastSync = iso(row[S.lastSync]!)
    if (lastSync !== null) o['component'] = [{ code: concept(LAST_SYNC), valueDateTime: lastSync }]
    return emit(out, o)
  }

  const deviceResource = (id: string, d: SeenDevice): string => {
    const r: Record<string, unknown> = { resourceType: 'Device', identifier: [{ system: 'urn:vitalflow:device', value: id }] }
    const family = opts.devices.get(id)?.family ?? ''
    if (family !== '') r['type'] = { text: family }
    const st = d.status
    if (st !== null && st.model !== '') r['deviceName'] = [{ name: st.model, type: 'model-name' }]
    if (st !== null && st.serial !== '') r['serialNumber'] = st.serial
    if (st !== null && st.firmware !== '') r['version'] = [{ type: { coding: [FIRMWARE_REVISION], text: 'firmware revision' }, value: st.firmware }]
    return entry(r, d.url)
  }

  return {
    tables: TELEMETRY_TABLES,
    skip: () => false,
    head: `{"resourceType":"Bundle","type":"collection","timestamp":"${new Date().toISOString()}","entry":[` +
      entry({ resourceType: 'Patient', identifier: [{ system: 'urn:vitalflow:patient', value: opts.patient }] }, patientUrl) + ',' +
      entry(vitalflowCodeSystem()),
    row (table, row, out) {
      switch (table) {
        case 'vital_samples': return vital(row, out)
        case 'spot_measurements': return spot(row, out)
        case 'alarm_events': return alarm(row, out)
        case 'device_status': return status(row, out)
      }
    },
    endTable (table, out) {
      if (table !== 'vital_samples') return 0
      let n = 0
      for (const s of series.values()) n += flush(out, s)
      series.clear()
      return n
    },
    tail: () => [...seen].map(([id, d]) => ',' + deviceResource(id, d)).join('') + ']}',
  }
}
