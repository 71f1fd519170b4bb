/**
 * Clinical codes and the FHIR export (issue 14), against real chDB: every
 * exported Bundle passes the HL7 R4 JSON schema and vitalflow's profile rules
 * (test/support/fhir-check.ts), and a broken one fails the same check; each
 * coding decision (SpO2, glucose, sleep, HRV, steps), Patient/Device/gateway
 * references, alarm events and device status in FHIR, valueSampledData, the
 * CSV codes and the .proto comments. Expected codes are written out here.
 */
import { readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { METRIC_CATEGORY } from '../src/consent/index.ts'
import { SPOT_CODES, VITAL_CODES, loincOf } from '../src/rights/codes.ts'
import { exportPatient, type ExportRequest } from '../src/rights/export.ts'
import { closeConnection, connect, type StorageConnection } from '../src/storage/connection.ts'
import { migrate } from '../src/storage/migrate.ts'
import { GATEWAY_EXTENSION, LOINC, UCUM, bundleErrors, profileErrors, schemaErrors, type Bundle, type Resource } from './support/fhir-check.ts'
import { tempDir } from './support/node.ts'

const dir = tempDir('vf-fhir-')
const db = 'fhir_test'
let conn: StorageConnection

const T0 = Date.UTC(2024, 2, 10, 23, 0)
type Rec = Record<string, unknown>
const PROVENANCE = { purpose: 'care', legal_basis: 'consent', consent_version: 1, ingested_at: T0 }
const vital = (seq: number, idx: number, metric: keyof typeof METRIC_CATEGORY, ms: number, value: number, duration = 0, patient = 'p1'): Rec =>
  ({ tenant_id: 't1', patient_id: patient, device_id: 'brace-1', metric, category: METRIC_CATEGORY[metric], ts: ms, value, duration_ms: duration, quality: 255, seq, idx, ...PROVENANCE })
const SPOT_NULLS = { systolic: null, diastolic: null, pulse: null, spo2: null, temperature: null, glucose: null, weight: null }

const DATA: Record<string, Rec[]> = {
  vital_samples: [
    vital(1, 0, 'heart_rate', T0, 72), vital(1, 1, 'heart_rate', T0 + 1000, 73), vital(1, 2, 'heart_rate', T0 + 2000, 74.5),
    vital(1, 3, 'hrv_rmssd', T0, 41.5),
    vital(1, 4, 'spo2', T0 + 30_000, 97),
    vital(1, 5, 'respiration_rate', T0 + 30_000, 14),
    vital(1, 6, 'skin_temperature', T0 + 30_000, 33.5),
    vital(1, 7, 'steps', T0, 120, 60_000),
    vital(1, 8, 'active_energy', T0, 4.5, 60_000),
    vital(1, 9, 'sleep_stage', T0, 1, 30_000), // awake
    vital(1, 10, 'sleep_stage', T0 + 30_000, 2, 30_000), // light
    vital(1, 11, 'battery', T0 + 60_000, 88),
    vital(2, 0, 'heart_rate', T0 + 60_000, 70), vital(2, 1, 'heart_rate', T0 + 61_000, 69),
    vital(2, 2, 'sleep_stage', T0 + 60_000, 3, 30_000), // deep
    vital(2, 3, 'sleep_stage', T0 + 90_000, 4, 60_000), // rem, a longer epoch
    vital(3, 0, 'heart_rate', T0 + 120_000, 999, 0, 'p2'),
  ],
  spot_measurements: [
    { tenant_id: 't1', patient_id: 'p1', device_id: 'meter-1', ts: T0 + 10_000, meter_model: 'Nonin 3230', ...SPOT_NULLS, spo2: 96, pulse: 64, seq: 1, ...PROVENANCE },
    { tenant_id: 't1', patient_id: 'p1', device_id: 'meter-1', ts: T0 + 20_000, meter_model: 'Contour Next One', ...SPOT_NULLS, glucose: 5.4, seq: 2, ...PROVENANCE },
    { tenant_id: 't1', patient_id: 'p1', device_id: 'meter-1', ts: T0 + 25_000, meter_model: 'A&D UA-651BLE', ...SPOT_NULLS, systolic: 121, diastolic: 79, seq: 3, ...PROVENANCE },
  ],
  alarm_events: [
    { tenant_id: 't1', patient_id: 'p1', device_id: 'alarm-1', ts: T0 + 40_000, kind: 'button_press', battery: 80, latitude: 52.09, longitude: 5.12, accuracy_m: 12.5, location_consent_version: 3, seq: 1, ...PROVENANCE, legal_basis: 'contract' },
    { tenant_id: 't1', patient_id: 'p1', device_id: 'alarm-1', ts: T0 + 50_000, kind: 'heartbeat', battery: 79, latitude: null, longitude: null, accuracy_m: null, location_consent_version: 0, seq: 2, ...PROVENANCE, legal_basis: 'contract' },
  ],
  device_status: [
    { tenant_id: 't1', device_id: 'brace-1', patient_id: 'p1', ts: T0 + 70_000, model: 'Corsano CardioWatch 287-2', firmware: '3.1.4', serial_number: 'BRA-123456', battery: 87, last_sync: T0 + 65_000, diagnostics: ['ppg sensor recalibrated', ''], seq: 9, ...PROVENANCE, purpose: 'service_operation', legal_basis: 'legitimate_interest', consent_version: 0 },
  ],
  devices: [
    { tenant_id: 't1', device_id: 'brace-1', family: 'bracelet', patient_id: 'p1', secret_hash: 'x', gateway_id: 'phone-1', updated_at: T0 },
    { tenant_id: 't1', device_id: 'phone-1', family: 'gateway', patient_id: '', secret_hash: 'x', gateway_id: '', updated_at: T0 },
    { tenant_id: 't1', device_id: 'alarm-1', family: 'calarm', patient_id: 'p1', secret_hash: 'x', gateway_id: '', updated_at: T0 },
  ],
  device_bindings: ['brace-1', 'alarm-1', 'meter-1'].map((d) => ({ tenant_id: 't1', device_id: d, patient_id: 'p1', valid_from: 0, recorded_at: T0 })),
}
const TIME_COLUMNS = new Set(['ts', 'ingested_at', 'last_sync', 'updated_at', 'valid_from', 'recorded_at'])

function literal (column: string, v: unknown): string {
  if (v === null) return 'NULL'
  if (TIME_COLUMNS.has(column)) return `fromUnixTimestamp64Milli(${v as number}, 'UTC')`
  if (typeof v === 'number') return String(v)
  if (Array.isArray(v)) return `[${v.map((x) => literal('', x)).join(', ')}]`
  return `'${(typeof v === 'string' ? v : JSON.stringify(v)).replaceAll("'", "\\'")}'`
}

beforeAll(async () => {
  conn = await connect({ dataDir: dir.path, database: db })
  await migrate(conn)
  for (const [table, rows] of Object.entries(DATA)) {
    const columns = Object.keys(rows[0]!)
    await conn.client.command({ query: `INSERT INTO ${db}.${table} (${columns.join(', ')}) VALUES ${rows.map((r) => `(${columns.map((c) => literal(c, r[c])).join(', ')})`).join(', ')}` })
  }
})

afterAll(async () => {
  if (conn !== undefined) await closeConnection(conn)
  dir.remove()
})

async function exported (req: Partial<ExportRequest> = {}): Promise<string> {
  const chunks: Buffer[] = []
  const out = new Writable({ write (chunk: Buffer, _e, cb) { chunks.push(chunk); cb() } })
  await exportPatient(conn, { tenant: 't1', patient: 'p1', format: 'fhir', ...req }, out)
  return Buffer.concat(chunks).toString('utf8')
}

async function bundle (req: Partial<ExportRequest> = {}): Promise<Bundle> {
  return JSON.parse(await exported(req)) as Bundle
}

interface Obs extends Resource {
  identifier: Array<{ system: string; value: string }>
  code: { coding: Array<{ system: string; code: string }>; text: string }
  category?: Array<{ coding: Array<{ code: string }> }>
  device: { reference: string; display: string }
  extension?: Array<{ url: string; valueReference: { reference: string } }>
  effectiveDateTime?: string; effectivePeriod?: { start: string; end: string }
  valueQuantity?: { value: number; unit: string; system: string; code: string }
  valueSampledData?: { origin: { value: number; code: string }; period: number; dimensions: number; data: string }
  valueCodeableConcept?: { coding?: Array<{ code: string }>; text: string }
  component?: Array<{ code: { coding: Array<{ system: string; code: string }> }; valueQuantity?: { value: number; code: string }; valueDateTime?: string }>
  note?: Array<{ text: string }>
}
const observations = (b: Bundle): Obs[] => (b.entry ?? []).map((e) => e.resource).filter((r): r is Obs => r.resourceType === 'Observation')
const codesOf = (o: Obs): string[] => o.code.coding.map((c) => c.code)
const categoryOf = (o: Obs): string | undefined => o.category?.[0]?.coding[0]?.code
const byCode = (b: Bundle, code: string): Obs[] => observations(b).filter((o) => codesOf(o).includes(code))

describe('validation', () => {
  it('every exported Bundle passes the HL7 R4 JSON schema and the profile rules', async () => {
    for (const req of [{}, { sampled: true }, { fromMs: T0 + 30_000, toMs: T0 + 60_000 }, { patient: 'nobody' }, { tenant: 't2' }, { patient: 'p2' }]) {
      expect(bundleErrors(await bundle(req)), JSON.stringify(req)).toEqual([])
    }
  })

  it('a deliberately broken Bundle fails the same check', async () => {
    const good = await bundle()
    const broken = (f: (b: Bundle, o: Obs[]) => void): Bundle => {
      const b = structuredClone(good)
      f(b, observations(b))
      return b
    }
    // the schema: a number as text, an unknown element, a status FHIR does not know
    expect(schemaErrors(broken((_b, o) => { o[0]!.valueQuantity = { ...o.find((x) => x.valueQuantity)!.valueQuantity!, value: '72' as unknown as number } }))).not.toEqual([])
    expect(schemaErrors(broken((_b, o) => { (o[0] as Record<string, unknown>)['loinc'] = '8867-4' }))).not.toEqual([])
    expect(bundleErrors(broken((_b, o) => { o[0]!['status'] = 'done' }))).not.toEqual([])
    // the profile: SpO2 without 2708-6, glucose as a vital sign, steps per 24 h, a device that is not in the Bundle, a Patient with a name
    expect(profileErrors(broken((b) => { const o = byCode(b, '2708-6')[0]!; o.code.coding = o.code.coding.filter((c) => c.code !== '2708-6') }))).not.toEqual([])
    expect(profileErrors(broken((b) => { byCode(b, '15074-8')[0]!.category![0]!.coding[0]!.code = 'vital-signs' }))).not.toEqual([])
    expect(profileErrors(broken((b) => { byCode(b, '55423-8')[0]!.code.coding[0]!.code = '41950-7' }))).not.toEqual([])
    expect(profileErrors(broken((b) => { byCode(b, '8867-4')[0]!.valueQuantity!.code = '{beats}/min' }))).not.toEqual([])
    expect(profileErrors(broken((_b, o) => { o[0]!.device.reference = 'urn:uuid:00000000-0000-0000-0000-000000000000' }))).not.toEqual([])
    expect(profileErrors(broken((b) => { b.entry!.find((e) => e.resource.resourceType === 'Patient')!.resource['name'] = [{ family: 'Jansen' }] }))).not.toEqual([])
    expect(bundleErrors(good)).toEqual([])
  })
})

describe('clinical codes', () => {
  it('SpO2 carries LOINC 2708-6 and 59408-5, bracelet and spot meter alike, in %', async () => {
    const b = await bundle()
    const spo2 = observations(b).filter((o) => o.code.text.startsWith('Oxygen saturation'))
    expect(spo2.map((o) => o.identifier[0]!.system).sort()).toEqual(['urn:vitalflow:spot_measurements', 'urn:vitalflow:vital_samples'])
    for (const o of spo2) {
      expect(codesOf(o)).toEqual(['2708-6', '59408-5'])
      expect(o.code.coding.every((c) => c.system === LOINC)).toBe(true)
      expect(o.valueQuantity).toMatchObject({ system: UCUM, code: '%' })
      expect(categoryOf(o)).toBe('vital-signs')
    }
  })

  it('glucose is a laboratory result (15074-8, mmol/L), not a vital sign', async () => {
    const [o, ...more] = byCode(await bundle(), '15074-8')
    expect(more).toEqual([])
    expect(categoryOf(o!)).toBe('laboratory')
    expect(o!.valueQuantity).toMatchObject({ value: 5.4, system: UCUM, code: 'mmol/L' })
  })

  it('each sleep epoch is its stage\'s duration (deep 93831-6, light 93830-8, REM 93829-0; awake in our code system), in minutes over the epoch', async () => {
    const b = await bundle()
    const sleep = observations(b).filter((o) => o.identifier[0]!.system === 'urn:vitalflow:vital_samples' && categoryOf(o) === 'activity' && o.valueQuantity?.code === 'min')
    expect(sleep.map((o) => [codesOf(o)[0], o.valueQuantity!.value, o.effectivePeriod])).toEqual([
      ['sleep-awake-duration', 0.5, { start: new Date(T0).toISOString(), end: new Date(T0 + 30_000).toISOString() }],
      ['93830-8', 0.5, { start: new Date(T0 + 30_000).toISOString(), end: new Date(T0 + 60_000).toISOString() }],
      ['93831-6', 0.5, { start: new Date(T0 + 60_000).toISOString(), end: new Date(T0 + 90_000).toISOString() }],
      ['93829-0', 1, { start: new Date(T0 + 90_000).toISOString(), end: new Date(T0 + 150_000).toISOString() }],
    ])
    expect(JSON.stringify(b)).not.toContain('"code":"93832-4"')
  })

  it('HRV is RMSSD in vitalflow\'s own code system, which the Bundle carries; never LOINC 80404-7 (SDNN)', async () => {
    const b = await bundle()
    const text = JSON.stringify(b)
    expect(text).not.toContain('"code":"80404-7"')
    const [o] = observations(b).filter((x) => codesOf(x)[0] === 'hrv-rmssd')
    expect(o!.code.coding).toHaveLength(1)
    expect(o!.code.text).toMatch(/RMSSD.*no LOINC or MDC code/)
    expect(o!.valueQuantity).toMatchObject({ value: 41.5, system: UCUM, code: 'ms' })
    const system = o!.code.coding[0]!.system
    const cs = b.entry!.map((e) => e.resource).find((r) => r.resourceType === 'CodeSystem') as unknown as { url: string; content: string; concept: Array<{ code: string; definition: string }> }
    expect(cs.url).toBe(system)
    expect(cs.content).toBe('complete')
    expect(cs.concept.find((c) => c.code === 'hrv-rmssd')!.definition).toMatch(/80404-7 is SDNN/)
    // every code of that system used in the Bundle is defined there
    const used = new Set(text.match(new RegExp(`"system":"${system}","code":"[^"]+"`, 'g'))!.map((m) => m.slice(m.lastIndexOf(':') + 2, -1)))
    for (const c of used) expect(cs.concept.map((x) => x.code)).toContain(c)
  })

  it('steps count one interval: 55423-8 with effectivePeriod, never 41950-7 (per 24 h)', async () => {
    const b = await bundle()
    expect(JSON.stringify(b)).not.toContain('"code":"41950-7"')
    const [o] = byCode(b, '55423-8')
    expect(o!.effectivePeriod).toEqual({ start: new Date(T0).toISOString(), end: new Date(T0 + 60_000).toISOString() })
    expect(o!.valueQuantity).toMatchObject({ value: 120, code: '{steps}' })
    expect(categoryOf(o!)).toBe('activity')
  })
})

describe('Patient, Device and gateway', () => {
  it('every Observation names its Device; the bracelet\'s gateway phone is in the PHD gateway extension; the Patient is the pseudonym only', async () => {
    const b = await bundle()
    const byUrl = new Map(b.entry!.map((e) => [e.fullUrl, e.resource]))
    const patients = b.entry!.filter((e) => e.resource.resourceType === 'Patient')
    expect(patients.map((p) => p.resource)).toEqual([{ resourceType: 'Patient', identifier: [{ system: 'urn:vitalflow:patient', value: 'p1' }] }])
    const deviceId = (url: string): string => ((byUrl.get(url) as unknown as { identifier: Array<{ value: string }> }).identifier[0]!.value)
    for (const o of observations(b)) {
      expect(o['subject']).toEqual({ reference: patients[0]!.fullUrl })
      expect(deviceId(o.device.reference)).toBe(o.device.display)
      expect(o.identifier[0]!.value.startsWith(`${o.device.display}/`)).toBe(true)
      const gateway = o.extension?.find((x) => x.url === GATEWAY_EXTENSION)
      if (o.device.display === 'brace-1') expect(deviceId(gateway!.valueReference.reference)).toBe('phone-1')
      else expect(gateway).toBeUndefined()
    }
    const devices = b.entry!.map((e) => e.resource).filter((r) => r.resourceType === 'Device') as unknown as Array<Record<string, unknown> & { identifier: Array<{ value: string }> }>
    expect(devices.map((d) => d.identifier[0]!.value).sort()).toEqual(['alarm-1', 'brace-1', 'meter-1', 'phone-1'])
    expect(devices.find((d) => d.identifier[0]!.value === 'brace-1')).toMatchObject({
      type: { text: 'bracelet' }, serialNumber: 'BRA-123456', deviceName: [{ name: 'Corsano CardioWatch 287-2', type: 'model-name' }],
      version: [{ type: { coding: [{ system: 'urn:iso:std:iso:11073:10101', code: '531976' }] }, value: '3.1.4' }],
    })
    // the same device and patient get the same fullUrl in every export
    const again = await bundle()
    expect(again.entry!.filter((e) => e.resource.resourceType !== 'Observation' && e.resource.resourceType !== 'CodeSystem').map((e) => e.fullUrl).sort())
      .toEqual(b.entry!.filter((e) => e.resource.resourceType !== 'Observation' && e.resource.resourceType !== 'CodeSystem').map((e) => e.fullUrl).sort())
  })

  it('alarm events and device status are in FHIR too: the alarm kind, battery and location; battery, last sync and diagnostics', async () => {
    const b = await bundle()
    const alarms = observations(b).filter((o) => o.identifier[0]!.system === 'urn:vitalflow:alarm_events')
    expect(alarms.map((o) => [codesOf(o)[0], o.valueCodeableConcept!.coding![0]!.code, o.category])).toEqual([
      ['alarm-event', 'alarm-button-press', undefined], ['alarm-event', 'alarm-heartbeat', undefined],
    ])
    expect(alarms[0]!.component!.map((c) => [c.code.coding[0]!.code, c.valueQuantity!.value, c.valueQuantity!.code])).toEqual([
      ['67996', 80, '%'], ['latitude', 52.09, 'deg'], ['longitude', 5.12, 'deg'], ['location-accuracy', 12.5, 'm'],
    ])
    expect(alarms[1]!.component).toHaveLength(1) // no location without consent
    const battery = byCode(b, '67996')
    expect(battery.map((o) => [o.identifier[0]!.system, o.valueQuantity!.value])).toEqual([['urn:vitalflow:vital_samples', 88], ['urn:vitalflow:device_status', 87]])
    const status = battery[1]!
    expect(status.note).toEqual([{ text: 'ppg sensor recalibrated' }])
    expect(status.component).toEqual([{ code: expect.anything(), valueDateTime: new Date(T0 + 65_000).toISOString() }])
  })
})

describe('valueSampledData', () => {
  it('one Observation per metric and message: origin, period, data; expands back to exactly the stored samples, and the Bundle is smaller', async () => {
    const plain = await exported()
    const sampledText = await exported({ sampled: true })
    const b = JSON.parse(sampledText) as Bundle
    const hr = byCode(b, '8867-4').filter((o) => o.identifier[0]!.system === 'urn:vitalflow:vital_samples')
    expect(hr.map((o) => [o.identifier[0]!.value, o.valueSampledData, o.effectivePeriod])).toEqual([
      ['brace-1/1/0-2', { origin: { value: 0, unit: 'beats/minute', system: UCUM, code: '/min' }, period: 1000, dimensions: 1, data: '72 73 74.5' },
        { start: new Date(T0).toISOString(), end: new Date(T0 + 2000).toISOString() }],
      ['brace-1/2/0-1', { origin: { value: 0, unit: 'beats/minute', system: UCUM, code: '/min' }, period: 1000, dimensions: 1, data: '70 69' },
        { start: new Date(T0 + 60_000).toISOString(), end: new Date(T0 + 61_000).toISOString() }],
    ])
    // expanded, the sampled Observations give back every heart-rate sample ClickHouse holds
    const expanded = hr.flatMap((o) => o.valueSampledData!.data.split(' ').map((v, i) => [Date.parse(o.effectivePeriod!.start) + i * o.valueSampledData!.period, Number(v)]))
    const held = await (await conn.client.query({
      query: `SELECT toUnixTimestamp64Milli(ts) AS ms, value FROM ${db}.vital_samples WHERE tenant_id = 't1' AND patient_id = 'p1' AND metric = 'heart_rate' ORDER BY ts`, format: 'JSONEachRow',
    })).json<{ ms: string; value: number }>()
    expect(expanded).toEqual(held.map((r) => [Number(r.ms), r.value]))
    // a single sample stays a plain valueQuantity
    expect(byCode(b, 'hrv-rmssd')[0]!.valueQuantity).toMatchObject({ value: 41.5 })
    expect(observations(b).length).toBeLessThan(observations(JSON.parse(plain) as Bundle).length)
    expect(sampledText.length).toBeLessThan(plain.length)
    // sampled is FHIR only and off by default
    expect(plain).not.toContain('valueSampledData')
  })
})

describe('CSV and the contracts', () => {
  it('CSV carries the same codes: sleep epochs as minutes under their stage\'s code, steps 55423-8, SpO2 2708-6, no LOINC for RMSSD', async () => {
    const chunks: Buffer[] = []
    await exportPatient(conn, { tenant: 't1', patient: 'p1', format: 'csv' }, new Writable({ write (c: Buffer, _e, cb) { chunks.push(c); cb() } }))
    const lines = Buffer.concat(chunks).toString('utf8').trim().split('\r\n').map((l) => l.split(','))
    const of = (metric: string): string[][] => lines.filter((l) => l[0] === 'vital_samples' && l[5] === metric).map((l) => l.slice(6, 9))
    expect(of('sleep_stage')).toEqual([['0.5', 'min', ''], ['0.5', 'min', '93830-8'], ['0.5', 'min', '93831-6'], ['1', 'min', '93829-0']])
    expect(of('steps')).toEqual([['120', '{steps}', '55423-8']])
    expect(of('spo2')).toEqual([['97', '%', '2708-6']])
    expect(of('hrv_rmssd')).toEqual([['41.5', 'ms', '']])
    expect(lines.filter((l) => l[0] === 'spot_measurements' && l[5] === 'glucose').map((l) => l.slice(6, 9))).toEqual([['5.4', 'mmol/L', '15074-8']])
  })

  it('the .proto comments name the codes codes.ts holds', () => {
    // field -> [codes in the comment]; each must be what codes.ts says for that metric
    const commented = (file: string): Map<string, string[]> => new Map(readFileSync(new URL(`../proto/${file}`, import.meta.url), 'utf8').split('\n')
      .map((l) => /^\s*(?:optional |repeated )?\w+ (\w+) = \d+;\s*\/\/(.*)$/.exec(l)).filter((m) => m !== null)
      .map((m) => [m[1]!, [...m[2]!.matchAll(/\b(?:LOINC|MDC) ((?:\d+-\d|\d+)(?:,? (?:and )?\d+-\d)*)/g)].flatMap((x) => x[1]!.split(/,? (?:and )?/))]))
    const corsano = commented('corsano.proto')
    const cvitals = commented('cvitals.proto')
    const want: Record<string, string[]> = {
      heart_rate: ['8867-4'], spo2: ['2708-6', '59408-5'], respiration_rate: ['9279-1'], skin_temperature: ['39106-0'], steps: ['55423-8'], active_energy: ['41981-2'], hrv_rmssd: [], barometric_altitude: [],
    }
    for (const [metric, codes] of Object.entries(want)) {
      expect(corsano.get(metric), metric).toEqual(codes)
      expect(VITAL_CODES[metric as keyof typeof VITAL_CODES].codes.filter((c) => c.system === LOINC).map((c) => c.code), metric).toEqual(codes)
    }
    for (const [column, c] of Object.entries(SPOT_CODES)) {
      expect(cvitals.get(column), column).toEqual(c.codes.filter((x) => x.system === LOINC).map((x) => x.code))
      expect(loincOf(c)).toBe(cvitals.get(column)![0])
    }
    expect(cvitals.get('spo2')).toEqual(['2708-6', '59408-5'])
    expect(corsano.get('stage')).toEqual(['93830-8', '93831-6', '93829-0'])
    const proto = readFileSync(new URL('../proto/corsano.proto', import.meta.url), 'utf8')
    for (const wrong of ['80404-7', '41950-7', '93832-4']) expect(proto).not.toContain(wrong)
  })
})
