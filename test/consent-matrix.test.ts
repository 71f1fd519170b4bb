/**
 * The consent matrix, judged by what ClickHouse holds: for random policies
 * (a random legal basis per category), random grants and withdrawals and a
 * random stream of bracelet batches, spot measurements and located alarms,
 * a row is stored if and only if its category's basis held when its message
 * arrived. The expectation comes from an independent model of the log, the
 * answer from SELECTs on real chDB, never from the filter itself.
 *
 * The pipeline runs in process (decrypt → decode → consent → RowBinary →
 * write-ahead log → chDB) without sockets; the MQTT path is covered by the
 * streaming withdrawal test (withdrawal.test.ts) and by e2e.test.ts.
 */
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CATEGORIES, ConsentIndex, LEGAL_BASES, POLICY, type Category, type LegalBasis, type Policy } from '../src/consent/index.ts'
import { prepareKey } from '../src/crypto/index.ts'
import { createIngest, createMetrics } from '../src/pipeline/index.ts'
import type { DeviceRecord } from '../src/registry/index.ts'
import { createStorage, type Storage } from '../src/storage/index.ts'
import { createAlarmModel, createBraceletModel, createSpotModel, DeviceSealer } from '../devices/index.ts'
import { tempDir } from './support/node.ts'

const CONSENTABLE = ['vitals', 'sleep', 'activity', 'location', 'spot_measurements', 'alarm_events', 'device_diagnostics'] as const

let dir: ReturnType<typeof tempDir>
let storage: Storage
beforeAll(async () => {
  dir = tempDir('vf-matrix-')
  storage = await createStorage({ dataDir: dir.path, database: 'matrix', batch: { maxRows: 100_000, maxAgeMs: 10 }, wal: { segmentBytes: 1 << 24, budgetBytes: 1 << 30 } })
})
afterAll(async () => { await storage.close(); dir.remove() })

async function q<T> (sql: string, params: Record<string, unknown>): Promise<T[]> {
  await storage.flush()
  return await (await storage.conn.client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<T>()
}

type Step =
  | { kind: 'consent'; patient: 0 | 1; category: Category; action: 'grant' | 'withdraw' }
  | { kind: 'message'; patient: 0 | 1; stream: 'vitals' | 'spot' | 'alarm' }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('consent' as const), patient: fc.constantFrom(0 as const, 1 as const), category: fc.constantFrom(...CONSENTABLE), action: fc.constantFrom('grant' as const, 'withdraw' as const) }),
  fc.record({ kind: fc.constant('message' as const), patient: fc.constantFrom(0 as const, 1 as const), stream: fc.constantFrom('vitals' as const, 'spot' as const, 'alarm' as const) }),
)
const bases = fc.record(Object.fromEntries(CONSENTABLE.map((c) => [c, fc.constantFrom(...LEGAL_BASES)])) as Record<(typeof CONSENTABLE)[number], fc.Arbitrary<LegalBasis>>)

let run = 0

describe('consent matrix', () => {
  it('stores a row iff its category\'s basis holds at its message, for random policies, logs and streams', async () => {
    await fc.assert(fc.asyncProperty(bases, fc.array(step, { minLength: 1, maxLength: 30 }), async (basis, steps) => {
      const tenant = `mx-${run++}`
      const policy: Policy = { ...POLICY, collection: Object.fromEntries(CATEGORIES.map((c) => [c, { ...POLICY.collection[c], basis: (basis as Record<string, LegalBasis>)[c] ?? POLICY.collection[c].basis }])) as Policy['collection'] }
      const consent = new ConsentIndex(policy)
      const ingest = createIngest({ consent, storage, metrics: createMetrics() })
      const patients = [`${tenant}-a`, `${tenant}-b`]
      const senders = patients.map((patient, i) => {
        const key = randomBytes(32)
        const device = `${tenant}-d${i}`
        const record = { tenant, device, family: 'bracelet', patient, bindings: [{ fromMs: 0, patient }], gateway: null, secretHash: '', keys: new Map([[1, { aead: prepareKey(key), notAfterMs: null }]]), revokedAtMs: null } as unknown as DeviceRecord
        return { sender: { record, clientId: device, remoteAddress: '127.0.0.1' }, sealer: new DeviceSealer({ tenant, device, keyId: 1, key }), device }
      })
      // the independent model: per patient, which consent categories hold a grant right now
      const granted = [new Set<Category>(), new Set<Category>()]
      const holds = (p: number, c: Category): boolean => policy.collection[c].basis !== 'consent' || granted[p]!.has(c)
      const expected = new Map<string, number>() // `${device}/${seq}/${category}` → rows
      // asleep every other minute: sleep epochs in half the batches, whatever the hour the test runs at
      const bracelet = createBraceletModel(run, { asleep: (w) => Math.floor(w / 60_000) % 2 === 0 })
      const spot = createSpotModel(run)
      const alarm = createAlarmModel(run, { pressProbability: 1 })
      let version = 0
      let t = Date.now() - 3_600_000
      const durable: Array<Promise<void>> = []
      for (const s of steps) {
        if (s.kind === 'consent') {
          consent.apply({ tenant, patient: patients[s.patient]!, purpose: policy.collection[s.category].purpose, category: s.category, action: s.action, version: ++version, recordedBy: 't', source: 'app', recordedAtMs: t, validFromMs: 0 })
          if (s.action === 'grant') granted[s.patient]!.add(s.category)
          else granted[s.patient]!.delete(s.category)
          continue
        }
        t += 60_000
        const { sender, sealer, device } = senders[s.patient]!
        const add = (seq: number, c: Category, n: number): void => { if (n > 0 && holds(s.patient, c)) expected.set(`${device}/${seq}/${c}`, (expected.get(`${device}/${seq}/${c}`) ?? 0) + n) }
        let frame
        if (s.stream === 'vitals') {
          const b = bracelet.nextBatch(t)
          frame = sealer.seal('vitals', b)
          const seq = frame.seq
          add(seq, 'vitals', [b.heartRate, b.hrvRmssd, b.spo2, b.respirationRate, b.skinTemperature].reduce((n, x) => n + (x?.values.length ?? 0), 0))
          add(seq, 'activity', (b.steps?.values.length ?? 0) + (b.activeEnergy?.values.length ?? 0) + (b.barometricAltitude?.values.length ?? 0))
          add(seq, 'sleep', b.sleep.length)
          add(seq, 'device_diagnostics', 1)
        } else if (s.stream === 'spot') {
          frame = sealer.seal('spot', spot.next(t))
          add(frame.seq, 'spot_measurements', 1)
        } else {
          frame = sealer.seal('alarm', { ...alarm.next(t), location: { latitude: 52, longitude: 5, accuracyM: 5 } })
          if (holds(s.patient, 'alarm_events')) {
            add(frame.seq, 'alarm_events', 1)
            add(frame.seq, 'location', 1)
          }
        }
        const out = ingest.ingest(sender, frame.topic, Buffer.from(frame.frame))
        expect(out.kind).toBe('stored')
        if (out.kind === 'stored') durable.push(out.durable)
      }
      await Promise.all(durable)
      const actual = new Map<string, number>()
      const rows = await q<{ device: string; seq: string; category: string; n: string }>(
        `SELECT device_id AS device, toString(seq) AS seq, category, count() AS n FROM ${storage.conn.table('vital_samples')} WHERE tenant_id = {tenant:String} GROUP BY device, seq, category
         UNION ALL SELECT device_id, toString(seq), 'spot_measurements', count() FROM ${storage.conn.table('spot_measurements')} WHERE tenant_id = {tenant:String} GROUP BY device_id, seq
         UNION ALL SELECT device_id, toString(seq), 'alarm_events', count() FROM ${storage.conn.table('alarm_events')} WHERE tenant_id = {tenant:String} GROUP BY device_id, seq
         UNION ALL SELECT device_id, toString(seq), 'location', countIf(latitude IS NOT NULL) FROM ${storage.conn.table('alarm_events')} WHERE tenant_id = {tenant:String} GROUP BY device_id, seq HAVING countIf(latitude IS NOT NULL) > 0`,
        { tenant })
      for (const r of rows) actual.set(`${r.device}/${r.seq}/${r.category}`, Number(r.n))
      expect(Object.fromEntries([...actual].sort())).toEqual(Object.fromEntries([...expected].sort()))
      // and each stored row says under which basis it was stored
      const provenance = await q<{ category: string; legal_basis: string }>(
        `SELECT DISTINCT category, legal_basis FROM ${storage.conn.table('vital_samples')} WHERE tenant_id = {tenant:String}`, { tenant })
      for (const r of provenance) expect(r.legal_basis).toBe(policy.collection[r.category as Category].basis)
    }), { numRuns: 40 })
  }, 240_000)
})
