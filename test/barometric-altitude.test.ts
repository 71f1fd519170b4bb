/**
 * The bracelet's barometric altitude, end to end, as the catalogue's example
 * of adding a metric (proto field, one catalogue entry, the model's signal):
 * published by the bracelet model over MQTT/TLS, stored under its consent
 * category (activity), queryable through the clinician API (series, latest,
 * research aggregate) and exported (FHIR and CSV) through the rights API.
 * Codes and units are written out here, not taken from the catalogue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createBraceletModel } from '../devices/index.ts'
import { enrollAndConnect, rowsOf, startTestNode, tempDir, type TestDevice } from './support/node.ts'

const T = 'care-alt'
const PASSWORD = 'correct horse battery staple'
const MIN = 60_000
const WINDOWS = 10
const VITALFLOW = 'urn:vitalflow:fhir:CodeSystem:observation'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const t0 = Math.floor((Date.now() - 2 * 3_600_000) / MIN) * MIN
const sent = new Map<string, number[]>() // patient -> altitudes sent
const base = (): string => `http://127.0.0.1:${node.http.port}`

async function call (path: string, token: string): Promise<{ status: number; text: string }> {
  const r = await fetch(base() + path, { headers: { authorization: `Bearer ${token}` } })
  return { status: r.status, text: await r.text() }
}
async function login (user: string): Promise<string> {
  const r = await fetch(base() + '/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: T, user, password: PASSWORD }) })
  expect(r.status).toBe(200)
  return ((await r.json()) as { token: string }).token
}

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path, { RESEARCH_MIN_GROUP: 2 })
  await node.registry.createTenant(T, 'Care Alt')
  const admin = createAdminClient(base(), node.adminToken)
  for (const [user, role] of [['doc', 'clinician'], ['res', 'researcher'], ['boss', 'tenant_admin']] as const) {
    await admin.request('POST', '/admin/users', { tenant: T, user, role, password: PASSWORD })
  }
  // p-act and p-act2 consent to activity (care and research), two being the smallest research group; p-vit only to vitals: its altitude must not be stored
  for (const [patient, categories] of [['p-act', ['vitals', 'activity']], ['p-vit', ['vitals']], ['p-act2', ['vitals', 'activity']]] as const) {
    await node.registry.createPatient(T, patient)
    for (const category of categories) {
      for (const purpose of ['care', 'research'] as const) {
        await node.registry.recordConsent({ tenant: T, patient, purpose, category, action: 'grant', recordedBy: 'nurse', source: 'paper_form', validFromMs: 0 })
      }
    }
  }
  const devices: TestDevice[] = []
  for (const [i, patient] of ['p-act', 'p-vit', 'p-act2'].entries()) {
    const d = await enrollAndConnect(node, T, `brc-alt-${i}`, 'bracelet', patient)
    devices.push(d)
    const model = createBraceletModel(11 + i, { asleep: () => false })
    const values: number[] = []
    for (let w = 0; w < WINDOWS; w++) {
      const batch = model.nextBatch(t0 + w * MIN)
      values.push(...batch.barometricAltitude!.values)
      const { topic, frame } = d.sealer.seal('vitals', batch)
      await d.client.publishAsync(topic, Buffer.from(frame), { qos: 1 })
    }
    sent.set(patient, values)
  }
  await Promise.all(devices.map(async (d) => { await d.client.endAsync() }))
  await node.storage.flush()
}, 120_000)

afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('barometric altitude, a bracelet metric added through the catalogue', () => {
  it('the model publishes it and it is stored, one row per value, under activity consent only', async () => {
    const values = sent.get('p-act')!
    expect(values).toHaveLength(WINDOWS)
    for (const v of values) expect(v).toBeGreaterThan(-100)
    const rows = await rowsOf<{ patient_id: string; category: string; value: number }>(node,
      "SELECT patient_id, category, value FROM {db}.vital_samples WHERE tenant_id = {t:String} AND metric = 'barometric_altitude' ORDER BY ts", { t: T })
    expect(rows.every((r) => r.patient_id !== 'p-vit' && r.category === 'activity')).toBe(true)
    expect(rows.filter((r) => r.patient_id === 'p-act').map((r) => r.value)).toEqual(values) // Float32, printed shortest: the model sends one decimal
    // the vitals-only patient's other series are stored, its altitude is not
    const other = await rowsOf<{ metric: string }>(node, "SELECT DISTINCT metric FROM {db}.vital_samples WHERE patient_id = 'p-vit'")
    expect(other.map((r) => r.metric)).toContain('heart_rate')
    expect(other.map((r) => r.metric)).not.toContain('barometric_altitude')
  })

  it('is queryable through the clinician API: series, latest, and the research aggregate under activity consent', async () => {
    const doc = await login('doc')
    const values = sent.get('p-act')!
    const series = await call(`/api/patients/p-act/series?metric=barometric_altitude&from=${t0}&to=${t0 + WINDOWS * MIN}&buckets=${WINDOWS}`, doc)
    expect(series.status).toBe(200)
    const points = JSON.parse(series.text) as Array<{ n: number; min: number; max: number }>
    expect(points.reduce((n, p) => n + p.n, 0)).toBe(values.length)
    expect(Math.min(...points.map((p) => p.min))).toBeCloseTo(Math.min(...values), 3)
    const latest = JSON.parse((await call('/api/patients/p-act/latest', doc)).text) as Array<{ metric: string; value: number }>
    expect(latest.find((l) => l.metric === 'barometric_altitude')?.value).toBeCloseTo(values.at(-1)!, 3)
    const agg = await call(`/api/research/aggregate?metric=barometric_altitude&from=${t0 - MIN}`, await login('res'))
    expect(agg.status).toBe(200)
    expect(JSON.parse(agg.text)).toMatchObject([{ patients: 2 }])
  })

  it('is exported: a FHIR Observation with the vitalflow code and UCUM m, and a CSV line per value', async () => {
    const boss = await login('boss')
    const values = sent.get('p-act')!
    const fhir = await call('/api/patients/p-act/export?format=fhir', boss)
    expect(fhir.status).toBe(200)
    const bundle = JSON.parse(fhir.text) as { entry: Array<{ resource: Record<string, any> }> }
    const system = bundle.entry.find((e) => e.resource['resourceType'] === 'CodeSystem')!.resource
    expect(system['concept'].map((c: { code: string }) => c.code)).toContain('barometric-altitude')
    const obs = bundle.entry.map((e) => e.resource).filter((r) => r['code']?.coding?.[0]?.code === 'barometric-altitude')
    expect(obs).toHaveLength(values.length)
    for (const o of obs) {
      expect(o['code'].coding[0].system).toBe(VITALFLOW)
      expect(o['valueQuantity']).toMatchObject({ unit: 'm', system: 'http://unitsofmeasure.org', code: 'm' })
      expect(o['category'][0].coding[0].code).toBe('activity')
      expect(o['effectiveDateTime']).toMatch(/Z$/)
    }
    const csv = (await call('/api/patients/p-act/export?format=csv', boss)).text.trim().split('\r\n').map((l) => l.split(','))
    const lines = csv.filter((l) => l[0] === 'vital_samples' && l[5] === 'barometric_altitude')
    expect(lines).toHaveLength(values.length)
    for (const l of lines) expect([l[7], l[8]]).toEqual(['m', ''])
  })
})
