/**
 * The portability export (GDPR art. 20) against real chDB in a temp directory:
 * FHIR structure for every measurement type, a round trip against what
 * ClickHouse holds, NDJSON/CSV fidelity and quoting, tenant and patient
 * isolation, and bounded memory over a million samples. Nothing is mocked; the
 * expected codes are written out here, not taken from src/rights/codes.ts, and
 * every Bundle passes the HL7 R4 schema and the profile rules (support/fhir-check.ts).
 */
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { METRIC_CATEGORY } from '../src/consent/index.ts'
import { ExportError, exportPatient, type ExportRequest, type ExportResult } from '../src/rights/export.ts'
import { closeConnection, connect, type StorageConnection } from '../src/storage/connection.ts'
import { migrate } from '../src/storage/migrate.ts'
import { bundleErrors, type Bundle } from './support/fhir-check.ts'
import { tempDir } from './support/node.ts'

const LOINC = 'http://loinc.org'
const UCUM = 'http://unitsofmeasure.org'
const CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/observation-category'
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

const VITALFLOW = 'urn:vitalflow:fhir:CodeSystem:observation'
/** [first code, UCUM code, FHIR category] as issue 14 decided them; sleep epochs are coded by stage (SLEEP). */
const VITAL: Record<string, readonly [string, string, string]> = {
  heart_rate: ['8867-4', '/min', 'vital-signs'],
  hrv_rmssd: ['hrv-rmssd', 'ms', 'vital-signs'],
  spo2: ['2708-6', '%', 'vital-signs'],
  respiration_rate: ['9279-1', '/min', 'vital-signs'],
  skin_temperature: ['39106-0', 'Cel', 'vital-signs'],
  steps: ['55423-8', '{steps}', 'activity'],
  active_energy: ['41981-2', 'kcal', 'activity'],
  sleep_stage: ['', 'min', 'activity'],
}
/** Sleep epoch codes by stored stage number (0 unspecified, 1 awake, 2 light, 3 deep, 4 REM). */
const SLEEP = ['sleep-unscored-duration', 'sleep-awake-duration', '93830-8', '93831-6', '93829-0']
/** The LOINC code of a stored vital sample ('' where the code is vitalflow's own), as the CSV gives it. */
const loincOf = (metric: string, value: number): string => {
  const c = metric === 'sleep_stage' ? SLEEP[value]! : VITAL[metric]?.[0] ?? ''
  return /^\d+-\d$/.test(c) ? c : ''
}
const SPOT: Record<string, readonly [string, string]> = {
  systolic: ['8480-6', 'mm[Hg]'],
  diastolic: ['8462-4', 'mm[Hg]'],
  pulse: ['8867-4', '/min'],
  spo2: ['2708-6', '%'], // and 59408-5 (fhir-export.test.ts)
  temperature: ['8310-5', 'Cel'],
  glucose: ['15074-8', 'mmol/L'],
  weight: ['29463-7', 'kg'],
}
const SPOT_COLUMNS = Object.keys(SPOT)

const dir = tempDir('vf-export-')
const db = 'export_test'
let conn: StorageConnection

// ---- data -------------------------------------------------------------------------------------

const T0 = Date.UTC(2024, 0, 31, 23, 58) // two minutes before a month (and partition) boundary
const TIME_COLUMNS = new Set(['ts', 'ingested_at', 'last_sync'])
const PROVENANCE = { purpose: 'care', legal_basis: 'consent', consent_version: 1, ingested_at: T0 + 3_600_000 }
type Rec = Record<string, unknown>

const vital = (tenant: string, patient: string, device: string, seq: number, idx: number, metric: keyof typeof METRIC_CATEGORY, ms: number, value: number, duration = 0): Rec =>
  ({ tenant_id: tenant, patient_id: patient, device_id: device, metric, category: METRIC_CATEGORY[metric], ts: ms, value, duration_ms: duration, quality: 255, seq, idx, ...PROVENANCE })
const spot = (tenant: string, patient: string, seq: number, ms: number, values: Partial<Record<string, number>>, model = 'Omron M7'): Rec =>
  ({ tenant_id: tenant, patient_id: patient, device_id: 'meter-1', ts: ms, meter_model: model, ...Object.fromEntries(SPOT_COLUMNS.map((c) => [c, values[c] ?? null])), seq, ...PROVENANCE })
const alarm = (tenant: string, seq: number, ms: number, kind: string, location: [number, number, number] | null): Rec => ({
  tenant_id: tenant, patient_id: 'p1', device_id: 'alarm-1', ts: ms, kind, battery: 80 - seq, latitude: location?.[0] ?? null, longitude: location?.[1] ?? null,
  accuracy_m: location?.[2] ?? null, location_consent_version: location === null ? 0 : 3, seq, ...PROVENANCE, legal_basis: 'contract',
})
const status = (tenant: string, patient: string, device: string, seq: number, ms: number, lastSync: number | null, diagnostics: string[]): Rec => ({
  tenant_id: tenant, device_id: device, patient_id: patient, ts: ms, model: 'cAlarm', firmware: '2.1', serial_number: `SN-${device}`, battery: 77,
  last_sync: lastSync, diagnostics, seq, ...PROVENANCE, purpose: 'service_operation', legal_basis: 'legitimate_interest', consent_version: 0,
})

const ODD_MODEL = 'A&D, "UA-651BLE"'
const ODD_KIND = 'custom, "odd" kind'
const ODD_DIAGNOSTICS = ['boot ok', 'crash, "x"\nline 2']
/** Values only rows of another patient or tenant hold; they must never appear in p1's export. */
const FOREIGN = [997, 998, 999]

const DATA: Record<string, Rec[]> = {
  vital_samples: [
    vital('t1', 'p1', 'brace-1', 1, 0, 'heart_rate', T0, 72),
    vital('t1', 'p1', 'brace-1', 1, 1, 'hrv_rmssd', T0, 41.5),
    vital('t1', 'p1', 'brace-1', 1, 2, 'spo2', T0, 97),
    vital('t1', 'p1', 'brace-1', 1, 3, 'respiration_rate', T0, 14),
    vital('t1', 'p1', 'brace-1', 1, 4, 'skin_temperature', T0, 33.25),
    vital('t1', 'p1', 'brace-1', 1, 5, 'steps', T0, 120, 60_000),
    vital('t1', 'p1', 'brace-1', 1, 6, 'active_energy', T0, 4.5, 60_000),
    vital('t1', 'p1', 'brace-1', 1, 7, 'sleep_stage', T0, 2, 30_000),
    vital('t1', 'p1', 'brace-1', 1, 8, 'battery', T0 + 60_000, 88),
    vital('t1', 'p1', 'brace-1', 2, 0, 'heart_rate', T0 + 180_000, 75), // February
    vital('t1', 'p1', 'brace-1', 2, 1, 'sleep_stage', T0 + 180_000, 4, 30_000),
    vital('t1', 'p1', 'brace-1', 2, 2, 'sleep_stage', T0 + 210_000, 0, 30_000),
    vital('t1', 'p1', 'brace-2', 1, 0, 'heart_rate', T0, 80), // same ts as brace-1's: device decides
    vital('t1', 'p1', 'brace-2', 1, 1, 'spo2', T0 + 1000, 95.5),
    vital('t1', 'p2', 'brace-1', 3, 0, 'heart_rate', T0 + 5000, 999), // the device's next patient
    vital('t2', 'p1', 'brace-1', 1, 0, 'heart_rate', T0, 998), // same ids, other tenant
  ],
  spot_measurements: [
    spot('t1', 'p1', 1, T0 + 10_000, { systolic: 121, diastolic: 79, pulse: 64, spo2: 98, temperature: 36.8, glucose: 5.4, weight: 71.3 }, ODD_MODEL),
    spot('t1', 'p1', 2, T0 + 20_000, { systolic: 130 }),
    spot('t1', 'p1', 3, T0 + 30_000, { glucose: 6.1, weight: 71.2 }),
    spot('t1', 'p2', 4, T0 + 40_000, { weight: 999 }),
    spot('t2', 'p1', 1, T0 + 10_000, { systolic: 997 }),
  ],
  alarm_events: [
    alarm('t1', 1, T0 + 40_000, 'button_press', [52.09, 5.12, 12.5]),
    alarm('t1', 2, T0 + 50_000, ODD_KIND, null),
    alarm('t2', 1, T0 + 40_000, 'fall_detected', [1, 2, 3]),
  ],
  device_status: [
    status('t1', 'p1', 'alarm-1', 3, T0 + 60_000, T0 + 59_000, ODD_DIAGNOSTICS),
    status('t1', 'p1', 'brace-1', 4, T0 + 70_000, null, []),
    status('t1', 'p2', 'brace-1', 5, T0 + 80_000, null, ['p2']),
    status('t2', 'p1', 'alarm-1', 3, T0 + 60_000, null, ['t2']),
  ],
}

function literal (column: string, v: unknown): string {
  if (v === null) return 'NULL'
  if (TIME_COLUMNS.has(column)) return `fromUnixTimestamp64Milli(${v as number}, 'UTC')`
  if (typeof v === 'number') return String(v)
  if (Array.isArray(v)) return `[${v.map((x) => literal('', x)).join(', ')}]`
  return `'${(typeof v === 'string' ? v : JSON.stringify(v)).replaceAll('\\', '\\\\').replaceAll("'", "\\'").replaceAll('\n', '\\n')}'`
}

async function insert (table: string, rows: Rec[]): Promise<void> {
  const columns = Object.keys(rows[0]!)
  const values = rows.map((r) => `(${columns.map((c) => literal(c, r[c])).join(', ')})`)
  await conn.client.command({ query: `INSERT INTO ${db}.${table} (${columns.join(', ')}) VALUES ${values.join(', ')}` })
}

async function query<T = Rec> (sql: string, params: Rec = {}): Promise<T[]> {
  return await (await conn.client.query({ query: sql.replaceAll('{db}', db), query_params: params, format: 'JSONEachRow' })).json<T>()
}

/** The export as text, gathered from a plain Writable. */
async function exported (req: Partial<ExportRequest> & Pick<ExportRequest, 'format'>): Promise<{ text: string; result: ExportResult }> {
  const chunks: Buffer[] = []
  const out = new Writable({ write (chunk: Buffer, _enc, cb) { chunks.push(chunk); cb() } })
  const result = await exportPatient(conn, { tenant: 't1', patient: 'p1', ...req }, out)
  return { text: Buffer.concat(chunks).toString('utf8'), result }
}

/** ClickHouse prints DateTime64 as '2024-01-31 23:58:00.000' (UTC columns). */
const isoOf = (t: string): string => new Date(`${t.replace(' ', 'T')}Z`).toISOString()

/** RFC 4180: records end in CRLF; quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv (text: string): string[][] {
  const records: string[][] = []
  let record: string[] = []
  let f = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c !== '"') f += c
      else if (text[i + 1] === '"') { f += '"'; i++ } else quoted = false
    } else if (c === '"' && f === '') quoted = true
    else if (c === ',') { record.push(f); f = '' } else if (c === '\r' && text[i + 1] === '\n') { record.push(f); records.push(record); record = []; f = ''; i++ } else {
      expect(c, 'a bare line break or stray quote outside a quoted field').not.toMatch(/[\r\n"]/)
      f += c
    }
  }
  expect(f === '' && record.length === 0, 'the last record ends in CRLF').toBe(true)
  return records
}

beforeAll(async () => {
  conn = await connect({ dataDir: dir.path, database: db })
  await migrate(conn)
  for (const [table, rows] of Object.entries(DATA)) await insert(table, rows)
})

afterAll(async () => {
  if (conn !== undefined) await closeConnection(conn)
  dir.remove()
})

// ---- FHIR -------------------------------------------------------------------------------------

interface Observation {
  resourceType: string; status: string; identifier: Array<{ system: string; value: string }>; code: { coding: Array<{ system: string; code: string }> }
  category: Array<{ coding: Array<{ system: string; code: string }> }>; subject: { reference: string }; device: { reference: string; display: string }
  effectiveDateTime?: string; effectivePeriod?: { start: string; end: string }
  valueQuantity?: { value: number; unit: string; system: string; code: string }
  valueCodeableConcept?: { coding?: Array<{ system: string; code: string }>; text: string }
  component?: Array<{ code: { coding: Array<{ system: string; code: string }> }; valueQuantity: { value: number; system: string; code: string } }>
}

/** The Bundle's Observations of vital samples and spot measurements (alarm events and device status: fhir-export.test.ts), after checking the whole Bundle. */
async function bundle (req: Partial<ExportRequest> = {}): Promise<{ observations: Observation[]; result: ExportResult; patientUrl: string }> {
  const { text, result } = await exported({ format: 'fhir', ...req })
  const b = JSON.parse(text) as Bundle
  expect(bundleErrors(b)).toEqual([])
  expect(b.resourceType).toBe('Bundle')
  expect(b.type).toBe('collection')
  expect(b.timestamp).toMatch(ISO)
  for (const e of b.entry ?? []) expect(e.fullUrl).toMatch(/^urn:uuid:[0-9a-f-]{36}$/)
  const all = (b.entry ?? []).map((e) => e.resource).filter((r) => r.resourceType === 'Observation') as unknown as Observation[]
  expect(result.resources).toBe(all.length)
  const observations = all.filter((o) => /vital_samples|spot_measurements/.test(o.identifier[0]!.system))
  return { observations, result, patientUrl: b.entry!.find((e) => e.resource.resourceType === 'Patient')!.fullUrl }
}

const startOf = (o: Observation): number => Date.parse(o.effectiveDateTime ?? o.effectivePeriod!.start)

describe('FHIR export', () => {
  it('gives a structurally valid Observation for every metric and every spot column, with LOINC and UCUM', async () => {
    const { observations, patientUrl } = await bundle()
    const vitals = new Map(DATA['vital_samples']!.filter((r) => r['tenant_id'] === 't1' && r['patient_id'] === 'p1').map((r) => [`${String(r['device_id'])}/${String(r['seq'])}/${String(r['idx'])}`, r]))
    const seenMetrics = new Set<string>()
    const seenColumns = new Set<string>()
    for (const o of observations) {
      expect(o.resourceType).toBe('Observation')
      expect(o.status).toBe('final')
      expect(o.subject).toEqual({ reference: patientUrl })
      expect(o.device.display).toMatch(/^(brace|meter)-\d$/)
      if (o.effectivePeriod === undefined) expect(o.effectiveDateTime).toMatch(ISO)
      else {
        expect(o.effectivePeriod.start).toMatch(ISO)
        expect(o.effectivePeriod.end).toMatch(ISO)
        expect(Date.parse(o.effectivePeriod.end)).toBeGreaterThan(Date.parse(o.effectivePeriod.start))
      }
      const [{ system, value: id }] = o.identifier as [{ system: string; value: string }]
      if (system === 'urn:vitalflow:vital_samples') {
        const row = vitals.get(id)!
        const metric = row['metric'] as string
        seenMetrics.add(metric)
        if (metric === 'battery') {
          expect(o.code.coding[0]).toMatchObject({ system: 'urn:iso:std:iso:11073:10101', code: '67996' })
          expect(o.category).toBeUndefined()
          expect(o.valueQuantity).toMatchObject({ system: UCUM, code: '%', value: row['value'] })
          continue
        }
        const [first, ucum, category] = VITAL[metric]!
        const code = metric === 'sleep_stage' ? SLEEP[row['value'] as number]! : first
        expect(o.code.coding[0]).toMatchObject({ system: /^\d+-\d$/.test(code) ? LOINC : VITALFLOW, code })
        expect(o.category[0]!.coding[0]).toEqual({ system: CATEGORY_SYSTEM, code: category, display: expect.any(String) })
        expect(o.valueCodeableConcept).toBeUndefined()
        expect(o.valueQuantity).toMatchObject({ system: UCUM, code: ucum, value: metric === 'sleep_stage' ? (row['duration_ms'] as number) / 60_000 : row['value'] })
        expect(o.valueQuantity!.unit.length).toBeGreaterThan(0)
      } else {
        expect(system).toBe('urn:vitalflow:spot_measurements')
        expect(o.category[0]!.coding[0]!.code).toBe(id.endsWith('/glucose') ? 'laboratory' : 'vital-signs')
        const column = id.split('/')[2]!
        if (column === 'blood_pressure') {
          expect(o.code.coding[0]!.code).toBe('85354-9')
          expect(o.valueQuantity).toBeUndefined()
          for (const c of o.component!) {
            const name = c.code.coding[0]!.code === SPOT['systolic']![0] ? 'systolic' : 'diastolic'
            expect(c.code.coding[0]).toMatchObject({ system: LOINC, code: SPOT[name]![0] })
            expect(c.valueQuantity).toMatchObject({ system: UCUM, code: 'mm[Hg]', value: expect.any(Number) })
            seenColumns.add(name)
          }
        } else {
          expect(o.code.coding[0]!.code).toBe(SPOT[column]![0])
          expect(o.valueQuantity).toMatchObject({ system: UCUM, code: SPOT[column]![1], value: expect.any(Number) })
          seenColumns.add(column)
        }
      }
    }
    expect([...seenMetrics].sort()).toEqual([...Object.keys(VITAL), 'battery'].sort())
    expect([...seenColumns].sort()).toEqual([...SPOT_COLUMNS].sort())
    // the full reading is one panel with two components
    const panel = observations.find((o) => o.identifier[0]!.value === 'meter-1/1/blood_pressure')!
    expect(panel.component!.map((c) => c.code.coding[0]!.code)).toEqual(['8480-6', '8462-4'])
    // sleep epochs: light, REM and a stored unspecified stage, each its duration over its epoch
    const stages = observations.filter((o) => SLEEP.includes(o.code.coding[0]!.code))
    expect(stages.map((o) => o.code.coding[0]!.code)).toEqual(['93830-8', '93829-0', 'sleep-unscored-duration'])
    expect(stages[0]!.effectivePeriod).toEqual({ start: new Date(T0).toISOString(), end: new Date(T0 + 30_000).toISOString() })
  })

  it('round trip: every Observation turns back into exactly the values ClickHouse holds for this patient, in time order', async () => {
    const { observations } = await bundle()
    const metricOf = new Map<string, string>([...Object.entries(VITAL).map(([m, [code]]) => [code, m] as const), ...SLEEP.map((c) => [c, 'sleep_stage'] as const), ['67996', 'battery']])
    const columnOf = new Map(Object.entries(SPOT).map(([c, [loinc]]) => [loinc, c]))
    const fromFhir: string[] = []
    const spots: string[] = []
    for (const o of observations) {
      const [device, seq, idx] = o.identifier[0]!.value.split('/')
      const ms = startOf(o)
      if (o.identifier[0]!.system === 'urn:vitalflow:vital_samples') {
        const duration = o.effectivePeriod === undefined ? 0 : Date.parse(o.effectivePeriod.end) - ms
        const code = o.code.coding[0]!.code
        const value = SLEEP.includes(code) ? SLEEP.indexOf(code) : o.valueQuantity!.value
        fromFhir.push([metricOf.get(o.code.coding[0]!.code), ms, device, seq, idx, value, duration].join('|'))
      } else {
        const parts = o.component ?? [{ code: o.code, valueQuantity: o.valueQuantity! }]
        for (const p of parts) spots.push([columnOf.get(p.code.coding[0]!.code), ms, device, seq, p.valueQuantity.value].join('|'))
      }
    }
    const held = await query(`SELECT metric, toUnixTimestamp64Milli(ts) AS ms, device_id, toString(seq) AS s, idx, value, duration_ms FROM {db}.vital_samples
      WHERE tenant_id = {t:String} AND patient_id = {p:String}`, { t: 't1', p: 'p1' })
    expect(fromFhir.sort()).toEqual(held.map((r) => [r['metric'], Number(r['ms']), r['device_id'], r['s'], r['idx'], r['value'], r['duration_ms']].join('|')).sort())
    const heldSpots = await query(`SELECT toUnixTimestamp64Milli(ts) AS ms, device_id, toString(seq) AS s, ${SPOT_COLUMNS.join(', ')} FROM {db}.spot_measurements
      WHERE tenant_id = {t:String} AND patient_id = {p:String}`, { t: 't1', p: 'p1' })
    expect(spots.sort()).toEqual(heldSpots.flatMap((r) => SPOT_COLUMNS.filter((c) => r[c] !== null).map((c) => [c, Number(r['ms']), r['device_id'], r['s'], r[c]].join('|'))).sort())
    const vitalStarts = observations.filter((o) => o.identifier[0]!.system.endsWith('vital_samples')).map(startOf)
    expect(vitalStarts).toEqual([...vitalStarts].sort((a, b) => a - b))
  })

  it('another patient and another tenant never appear, in any format; the other tenant gets only its own rows', async () => {
    for (const format of ['fhir', 'ndjson', 'csv'] as const) {
      // random ids, and the Bundle's own timestamp, could hold any digits
      const text = (await exported({ format })).text.replace(/"urn:uuid:[0-9a-f-]+"/g, '').replace(/"timestamp":"[^"]*"/, '')
      for (const v of FOREIGN) expect(text).not.toContain(String(v))
      expect(text).not.toContain('p2')
      expect(text).not.toContain('fall_detected')
    }
    const { observations } = await bundle({ tenant: 't2' })
    expect(observations.map((o) => o.valueQuantity?.value ?? o.component?.[0]?.valueQuantity.value).sort((a, b) => a! - b!)).toEqual([997, 998])
    const { text } = await exported({ format: 'ndjson', tenant: 't1', patient: 'p2' })
    expect(text.trim().split('\n').map((l) => (JSON.parse(l) as { table: string }).table).sort()).toEqual(['device_status', 'spot_measurements', 'vital_samples'])
  })

  it('a time range (from inclusive, to exclusive) exports exactly the rows ClickHouse has in it', async () => {
    const range = { fromMs: T0 + 1000, toMs: T0 + 180_000 }
    const { text, result } = await exported({ format: 'ndjson', ...range })
    const counted = await query<{ n: string }>(`SELECT sum(n) AS n FROM (${['vital_samples', 'spot_measurements', 'alarm_events', 'device_status'].map((t) =>
      `SELECT count() AS n FROM {db}.${t} WHERE tenant_id = 't1' AND patient_id = 'p1' AND ts >= fromUnixTimestamp64Milli({f:Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({to:Int64}, 'UTC')`).join(' UNION ALL ')})`,
    { f: range.fromMs, to: range.toMs })
    expect(result.rows).toBe(Number(counted[0]!.n))
    expect(text.trim().split('\n')).toHaveLength(result.rows)
    const { observations } = await bundle(range)
    for (const o of observations) expect(startOf(o) >= range.fromMs && startOf(o) < range.toMs).toBe(true)
  })

  it('an empty export is still valid: a Bundle without entries, no NDJSON lines, a CSV header', async () => {
    const { observations, result } = await bundle({ patient: 'nobody' })
    expect(observations).toEqual([])
    expect(result).toEqual({ rows: 0, resources: 0 })
    expect((await exported({ format: 'ndjson', patient: 'nobody' })).text).toBe('')
    expect((await exported({ format: 'csv', patient: 'nobody' })).text).toBe('table,ts,device,seq,idx,metric,value,unit,loinc,extra\r\n')
  })
})

// ---- NDJSON and CSV ---------------------------------------------------------------------------

const ORDER: Record<string, string> = {
  vital_samples: 'ts, device_id, seq, idx', spot_measurements: 'ts, device_id, seq', alarm_events: 'ts, device_id, seq', device_status: 'ts, device_id, seq',
}

/** What ClickHouse holds for t1/p1, per table, in export order. */
async function held (table: string): Promise<Rec[]> {
  return await query(`SELECT * FROM {db}.${table} WHERE tenant_id = 't1' AND patient_id = 'p1' ORDER BY ${ORDER[table]}`)
}

describe('NDJSON and CSV export', () => {
  it('NDJSON: one object per stored row, every column, same values and order as ClickHouse', async () => {
    const { text, result } = await exported({ format: 'ndjson' })
    const lines = text.split('\n')
    expect(lines.pop()).toBe('')
    const got = lines.map((l) => JSON.parse(l) as Rec)
    expect(result).toEqual({ rows: got.length, resources: got.length })
    for (const table of Object.keys(ORDER)) {
      const want = (await held(table)).map((r) => {
        const { tenant_id: _t, patient_id: _p, device_id: device, ts, seq, ...rest } = r
        const columns = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, TIME_COLUMNS.has(k) && v !== null ? isoOf(v as string) : v]))
        return { table, ts: isoOf(ts as string), device, seq: Number(seq), ...columns }
      })
      expect(want.length).toBeGreaterThan(0)
      expect(got.filter((o) => o['table'] === table)).toEqual(want)
    }
  })

  it('CSV: RFC 4180, one line per row (per value for spot measurements), units and LOINC, quoting that survives commas, quotes and line breaks', async () => {
    const { text, result } = await exported({ format: 'csv' })
    const [header, ...records] = parseCsv(text)
    expect(header).toEqual(['table', 'ts', 'device', 'seq', 'idx', 'metric', 'value', 'unit', 'loinc', 'extra'])
    for (const r of records) expect(r).toHaveLength(10)
    expect(result.resources).toBe(records.length)
    const of = (table: string): string[][] => records.filter((r) => r[0] === table)

    const vitals = await held('vital_samples')
    expect(of('vital_samples').map((r) => r.slice(1, 9))).toEqual(vitals.map((v) => {
      const metric = v['metric'] as string
      const ucum = VITAL[metric]?.[1] ?? '%' // battery: a unit, no LOINC
      const value = metric === 'sleep_stage' ? (v['duration_ms'] as number) / 60_000 : v['value'] // a sleep epoch is its duration, coded by stage
      return [isoOf(v['ts'] as string), v['device_id'], String(v['seq']), String(v['idx']), metric, String(value), ucum, loincOf(metric, v['value'] as number)]
    }))
    const sleep = of('vital_samples').filter((r) => r[5] === 'sleep_stage').map((r) => (JSON.parse(r[9]!) as { stage: string }).stage)
    expect(sleep).toEqual(['light', 'rem', 'unspecified'])

    const spots = await held('spot_measurements')
    expect(of('spot_measurements').map((r) => [r[1], r[3], r[5], r[6], r[7], r[8]])).toEqual(spots.flatMap((s) =>
      SPOT_COLUMNS.filter((c) => s[c] !== null).map((c) => [isoOf(s['ts'] as string), String(s['seq']), c, String(s[c]), SPOT[c]![1], SPOT[c]![0]])))
    expect(new Set(of('spot_measurements').filter((r) => r[3] === '1').map((r) => (JSON.parse(r[9]!) as Rec)['meter_model']))).toEqual(new Set([ODD_MODEL]))

    const alarms = of('alarm_events')
    expect(alarms.map((r) => r[5])).toEqual(['button_press', ODD_KIND])
    expect(JSON.parse(alarms[0]![9]!)).toMatchObject({ latitude: 52.09, longitude: 5.12, accuracy_m: 12.5, location_consent_version: 3 })

    const statuses = of('device_status')
    expect(statuses.map((r) => r[2])).toEqual(['alarm-1', 'brace-1'])
    expect(JSON.parse(statuses[0]![9]!)).toMatchObject({ diagnostics: ODD_DIAGNOSTICS, last_sync: new Date(T0 + 59_000).toISOString() })
    expect(JSON.parse(statuses[1]![9]!)).toMatchObject({ diagnostics: [], last_sync: null })
    expect(result.rows).toBe(vitals.length + spots.length + alarms.length + statuses.length)
  })

  it('refuses a bad request before reading anything', async () => {
    const out = new Writable({ write (_c, _e, cb) { cb() } })
    const refused = async (req: ExportRequest): Promise<unknown> => await exportPatient(conn, req, out).catch((e: unknown) => e)
    expect(await refused({ tenant: 't1', patient: 'p1', format: 'xml' as 'csv' })).toMatchObject({ code: 'ING_ERR_INVALID' })
    expect(await refused({ tenant: 't1', patient: 'p1', format: 'csv', fromMs: 1.5 })).toBeInstanceOf(ExportError)
    expect(await refused({ tenant: 't1', patient: 'p1', format: 'csv', fromMs: 10, toMs: 5 })).toMatchObject({ code: 'ING_ERR_INVALID' })
    expect(await refused({ tenant: 't1', patient: "p1' OR 1=1 --", format: 'csv' })).toMatchObject({ code: 'ING_ERR_ID' })
  })
})

// ---- bounded memory ---------------------------------------------------------------------------

describe('a long history', () => {
  const N = 1_000_000
  const MB = 1024 * 1024

  beforeAll(async () => {
    const metrics = Object.keys(VITAL)
    await conn.client.command({
      query: `INSERT INTO ${db}.vital_samples SELECT 'big', 'p', 'brace-1', {metrics:Array(String)}[number % 8 + 1] AS m, {categories:Array(String)}[number % 8 + 1],
        fromUnixTimestamp64Milli(toInt64(${T0} + intDiv(number, 8) * 1000), 'UTC'), (number % 1000) / 10,
        if(m IN ('steps', 'active_energy', 'sleep_stage'), 60000, 0), 255, intDiv(number, 64), number % 64, 'care', 'consent', 1, now64(3)
        FROM numbers(${N})`,
      query_params: { metrics, categories: metrics.map((m) => METRIC_CATEGORY[m as keyof typeof METRIC_CATEGORY]) },
    })
  }, 120_000)

  /** Counts bytes; every 8th write completes a little later, so `out` fills up and the export has to wait for 'drain'. */
  function slowCounter (): { out: Writable; bytes: () => number; drains: () => number } {
    let bytes = 0
    let writes = 0
    let drains = 0
    const out = new Writable({
      highWaterMark: 128 * 1024,
      write (chunk: Buffer, _enc, cb) {
        bytes += chunk.length
        if (++writes % 8 === 0) setTimeout(cb, 1)
        else cb()
      },
    })
    out.on('drain', () => { drains++ })
    return { out, bytes: () => bytes, drains: () => drains }
  }

  for (const format of ['ndjson', 'fhir'] as const) {
    it(`${format}: a million samples stream out with RSS growing by less than 200 MB`, async () => {
      const sink = slowCounter()
      const before = process.memoryUsage().rss
      let peak = before
      const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 10)
      try {
        const result = await exportPatient(conn, { tenant: 'big', patient: 'p', format }, sink.out)
        expect(result).toEqual({ rows: N, resources: N })
      } finally {
        clearInterval(sampler)
      }
      peak = Math.max(peak, process.memoryUsage().rss)
      expect(sink.drains()).toBeGreaterThan(0)
      expect(sink.bytes()).toBeGreaterThan(N * 100)
      expect((peak - before) / MB).toBeLessThan(200)
    }, 300_000)
  }

  it('stops with ING_ERR_OUTPUT when the output is destroyed midway, leaving no stray rejection behind', async () => {
    let writes = 0
    const out = new Writable({ write (_c, _e, cb) { if (++writes === 3) out.destroy(new Error('client went away')); cb() } })
    const e = await exportPatient(conn, { tenant: 'big', patient: 'p', format: 'ndjson' }, out).catch((err: unknown) => err)
    expect(e).toMatchObject({ code: 'ING_ERR_OUTPUT' })
    await new Promise((resolve) => setTimeout(resolve, 200)) // pages still in flight settle; an unhandled rejection would fail the run
  }, 60_000)
})
