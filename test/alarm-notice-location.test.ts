/**
 * A responder is told where an alarm happened only when the stored row may
 * keep that location: the consent must cover the alarm's own time. A button
 * press from before the location consent began (a backlog synced late) is
 * relayed without a location and stored without one; one after it carries it
 * in both. The pipeline runs in process on real chDB; the notice is what the
 * node relays over MQTT and Server-Sent Events.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConsentIndex } from '../src/consent/index.ts'
import { prepareKey } from '../src/crypto/index.ts'
import type { AlarmNotice } from '../src/decode/index.ts'
import { createIngest, createMetrics } from '../src/pipeline/index.ts'
import type { DeviceRecord } from '../src/registry/index.ts'
import { createStorage, type Storage } from '../src/storage/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let storage: Storage
beforeAll(async () => {
  dir = tempDir('vf-notice-')
  storage = await createStorage({ dataDir: dir.path, database: 'notice', batch: { maxRows: 1000, maxAgeMs: 10 }, wal: { segmentBytes: 1 << 24, budgetBytes: 1 << 30 } })
}, 60_000)
afterAll(async () => {
  await storage?.close(5000)
  dir?.remove()
})

describe('alarm notice location', () => {
  it('carries the location only where the consent covers the alarm\'s time, as the stored row does', async () => {
    const [tenant, patient, device] = ['care-n', 'p-n1', 'cal-n1']
    const consentStart = Date.now() - 600_000
    const consent = new ConsentIndex()
    for (const category of ['alarm_events', 'location'] as const) {
      consent.apply({ tenant, patient, purpose: 'care', category, action: 'grant', version: category === 'location' ? 2 : 1, recordedBy: 't', source: 'app', recordedAtMs: consentStart, validFromMs: category === 'location' ? consentStart : 0 })
    }
    const notices: AlarmNotice[] = []
    const ingest = createIngest({ consent, storage, metrics: createMetrics(), onAlarm: (a) => { notices.push(a) } })
    const key = randomBytes(32)
    const record = { tenant, device, family: 'calarm', patient, bindings: [{ fromMs: 0, patient }], gateway: null, secretHash: '', keys: new Map([[1, { aead: prepareKey(key), notAfterMs: null }]]), revokedAtMs: null } as unknown as DeviceRecord
    const sender = { record, clientId: device, remoteAddress: '127.0.0.1' }
    const sealer = new DeviceSealer({ tenant, device, keyId: 1, key })
    const model = createAlarmModel(3, { pressProbability: 1 })
    for (const at of [consentStart - 3_600_000, consentStart + 60_000]) {
      const { topic, frame } = sealer.seal('alarm', model.next(at))
      const out = ingest.ingest(sender, topic, frame)
      if (out.kind !== 'stored') throw new Error(`refused: ${out.detail}`)
      await out.durable
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(notices.map((n) => n.location === null)).toEqual([true, false])
    await storage.flush()
    const rows = await (await storage.conn.client.query({ query: 'SELECT toString(seq) AS s, latitude IS NULL AS hidden FROM notice.alarm_events ORDER BY seq', format: 'JSONEachRow' })).json<{ s: string; hidden: number }>()
    expect(rows.map((r) => Number(r.hidden) === 1)).toEqual([true, false])
  })
})
