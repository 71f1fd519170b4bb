/**
 * The catalogue (src/catalogue/) is the one list of what each device family
 * measures. This walks every field of each family's .proto message and checks
 * that the catalogue names it and that every stage handles it: decode limits,
 * storage rows and their consent category, the API's metric list, the export's
 * codes and the device model's signal and row expectation. A .proto field
 * without a catalogue entry, or an entry a stage does not follow, fails here.
 */
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import { METRICS as API_METRICS } from '../src/api/clinician.ts'
import {
  ALARM_LOCATION, BRACELET, BRACELET_FRAME_FIELDS, BRACELET_SERIES, METRICS, SPOT, SPOT_COLUMNS, SPOT_FRAME_FIELDS, STREAM_TABLE,
} from '../src/catalogue/index.ts'
import { CATEGORIES, METRIC_CATEGORY, POLICY, type Category, type Grant } from '../src/consent/index.ts'
import { RANGES, STREAMS, decodePayload, type BraceletBatch, type SpotMeasurement } from '../src/decode/index.ts'
import { RECTIFIABLE_TARGETS } from '../src/rights/index.ts'
import { SPOT_CODES, VITAL_CODES } from '../src/rights/codes.ts'
import { COLUMNS, TELEMETRY_TABLES, spotRows, vitalRows, type RowContext } from '../src/storage/rows.ts'
import { MIGRATIONS } from '../src/storage/schema.ts'
import { createBraceletModel, createSpotModel, encodePayload, expectedRows } from '../devices/index.ts'

const NOW = Date.UTC(2026, 10, 22, 12)
const MIN = 60_000

/** The .proto messages with their own (snake_case) field names. */
const root = new protobuf.Root().loadSync(['corsano.proto', 'cvitals.proto', 'calarm.proto']
  .map((f) => fileURLToPath(new URL(`../proto/${f}`, import.meta.url))), { keepCase: true })
const fieldsOf = (message: string): string[] => Object.keys(root.lookupType(`vitalflow.v1.${message}`).fields)

const GRANT: Grant = { purpose: 'care', basis: 'consent', version: 1, fromMs: 0 }
const ctx = (allowed: (c: Category) => boolean): RowContext =>
  ({ tenant: 't', patient: 'p', device: 'd', seq: 1n, ingestedAt: NOW, gate: (c) => allowed(c) ? GRANT : null })
const frame = (): BraceletBatch => ({ windowStartMs: NOW - 5 * MIN, windowMs: 5 * MIN, heartRateQuality: [], sleep: [], batteryPercent: 50 })
const decodeVitals = (b: BraceletBatch) => decodePayload('vitals', encodePayload('vitals', b), NOW)
const decodeSpot = (m: SpotMeasurement) => decodePayload('spot', encodePayload('spot', m), NOW)

describe('the bracelet catalogue', () => {
  it('names every BraceletBatch field of corsano.proto, and every entry is a field there', () => {
    const named = [...METRICS.map((m) => BRACELET[m].proto), ...BRACELET_FRAME_FIELDS]
    expect(new Set(fieldsOf('BraceletBatch'))).toEqual(new Set(named))
    const type = root.lookupType('vitalflow.v1.BraceletBatch')
    for (const s of BRACELET_SERIES) expect(type.fields[s.proto]!.type, s.proto).toBe('Series')
  })

  it('every metric has a policy category, a consent basis for care, and the API knows each but the diagnostics', () => {
    for (const m of METRICS) {
      const category = METRIC_CATEGORY[m]
      expect(CATEGORIES, m).toContain(category)
      expect(POLICY.collection[category].purpose, m).toMatch(/care|service_operation/)
      expect((API_METRICS as readonly string[]).includes(m), m).toBe(category !== 'device_diagnostics')
    }
  })

  describe.each(BRACELET_SERIES.map((s) => [s.metric, s] as const))('%s', (metric, s) => {
    const batch = (values: number[]): BraceletBatch => ({ ...frame(), [s.field]: { offsetMs: 0, intervalMs: MIN, values } })
    const [lo, hi] = s.range

    it('decode accepts its plausible range and refuses a value outside it', () => {
      expect(RANGES[s.proto as keyof typeof RANGES]).toEqual(s.range)
      const ok = decodeVitals(batch([lo, hi]))
      expect(ok.ok, ok.ok ? '' : ok.detail).toBe(true)
      for (const bad of [lo - 1, hi + 1]) {
        const r = decodeVitals(batch([bad]))
        expect(r.ok ? null : r.detail).toBe(`${s.proto} outside its plausible range`)
      }
    })

    it('becomes one row per value under its category, counted as dropped without consent, as the device model expects', () => {
      const b = batch([lo, hi, lo])
      const all = vitalRows(ctx(() => true), b)
      expect(all.rows).toBe(3 + 1) // + battery
      expect(expectedRows('vitals', b)).toBe(all.rows)
      expect(all.chunk.includes(Buffer.from(metric))).toBe(true)
      const none = vitalRows(ctx((c) => c !== s.category), b)
      expect(none).toMatchObject({ rows: 1, dropped: 3 })
    })

    it('is exported with a code whose UCUM unit is the stored unit', () => {
      const c = VITAL_CODES[metric]
      expect(c.ucum).toBe(s.unit)
      expect(c.codes.length + c.text.length).toBeGreaterThan(0)
    })

    it('is published by the bracelet model', () => {
      const b = createBraceletModel(7, { asleep: () => false }).nextBatch(NOW - 5 * MIN, 5 * MIN)
      expect(b[s.field]?.values.length ?? 0).toBeGreaterThan(0)
      const r = decodeVitals(b)
      expect(r.ok, r.ok ? '' : r.detail).toBe(true)
      expect(expectedRows('vitals', b)).toBe(vitalRows(ctx(() => true), b).rows)
    })
  })

  it('sleep and battery: their ranges are what decode checks', () => {
    const [first, last] = BRACELET.sleep_stage.range
    const epoch = (stage: number): BraceletBatch => ({ ...frame(), sleep: [{ offsetMs: 0, durationMs: 30_000, stage }] })
    expect(decodeVitals(epoch(first)).ok && decodeVitals(epoch(last)).ok).toBe(true)
    for (const bad of [first - 1, last + 1]) expect(decodeVitals(epoch(bad)).ok).toBe(false)
    expect(RANGES.battery).toEqual(BRACELET.battery.range)
    expect(decodeVitals({ ...frame(), batteryPercent: BRACELET.battery.range[1] + 1 }).ok).toBe(false)
  })
})

describe('the cVitals catalogue', () => {
  it('names every SpotMeasurement field of cvitals.proto, and every entry is a field there', () => {
    expect(new Set(fieldsOf('SpotMeasurement'))).toEqual(new Set([...SPOT_COLUMNS.map((c) => SPOT[c].proto), ...SPOT_FRAME_FIELDS]))
  })

  const schema = MIGRATIONS.flatMap((m) => m.statements('db')).join('\n')
  describe.each(SPOT_COLUMNS.map((c) => [c, SPOT[c]] as const))('%s', (column, s) => {
    const [lo, hi] = s.range
    it('decode checks its range; the table has its column and rows write it; rectifiable; exported in its unit', () => {
      expect(decodeSpot({ measuredAtMs: NOW, meterModel: 'm', [s.field]: hi }).ok).toBe(true)
      for (const bad of [lo - 1, hi + 1]) {
        const r = decodeSpot({ measuredAtMs: NOW, meterModel: 'm', [s.field]: bad })
        expect(r.ok ? null : r.detail).toBe(`${s.proto} outside its plausible range`)
      }
      expect(schema).toMatch(new RegExp(`\\b${column} Nullable\\(Float32\\)`))
      expect(COLUMNS.spot_measurements).toContain(column)
      // the value's own bytes are in the row: float32 little-endian after a not-null flag
      const f = Buffer.alloc(5); f.writeFloatLE(hi, 1)
      expect(spotRows(ctx(() => true), { measuredAtMs: NOW, meterModel: 'm', [s.field]: hi }).chunk.includes(f)).toBe(true)
      expect(RECTIFIABLE_TARGETS).toContain(`spot_measurements.${column}`)
      expect(SPOT_CODES[column].ucum).toBe(s.unit)
    })
  })

  it('every column is measured by one of the kit\'s meters', () => {
    const model = createSpotModel(3)
    const seen = new Set<string>()
    for (let i = 0; i < 200; i++) for (const [k, v] of Object.entries(model.next(NOW))) if (v != null) seen.add(k)
    for (const c of SPOT_COLUMNS) expect(seen, c).toContain(SPOT[c].field)
  })
})

describe('the cAlarm catalogue and the streams', () => {
  it('names the Location fields of calarm.proto; decode checks their ranges', () => {
    expect(new Set(fieldsOf('Location'))).toEqual(new Set(Object.values(ALARM_LOCATION).map((l) => l.proto)))
    for (const l of Object.values(ALARM_LOCATION)) expect(RANGES[l.proto]).toEqual(l.range)
  })

  it('every stream has its table, and they are the telemetry tables', () => {
    expect(Object.keys(STREAM_TABLE)).toEqual([...STREAMS])
    expect(Object.values(STREAM_TABLE)).toEqual([...TELEMETRY_TABLES])
  })
})
