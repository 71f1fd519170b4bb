/**
 * Overload: bracelets of two tenants publish as fast as their in-flight
 * windows let them — one tenant with many devices backfilling, the other a
 * few — against a storage bound (VF_STORAGE_BACKLOG_ROWS) far below what they
 * offer, while cAlarms keep pressing. Real node, aedes, TLS, mqtt.js, chDB.
 *
 * The node must slow the senders instead of queueing: bulk messages wait
 * unacknowledged (their sockets not read), the rows taken but not stored stay
 * within the bound (plus one message), nothing waits beyond one in-flight
 * window per connection, alarms are acknowledged and relayed while bulk
 * messages wait, the quiet tenant is served while the busy one waits, and
 * once the load stops everything drains: every acknowledged message is
 * stored exactly once. Latency is the benchmark's business (bench/), not this test's.
 */
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createAlarmModel, createBraceletModel, expectedRows } from '../devices/index.ts'
import { connectTls, enrollAndConnect, publishAcked, rowsOf, startTestNode, tempDir, type TestDevice } from './support/node.ts'

const BOUND = 3000
const IN_FLIGHT = 8
const SECONDS = 6
let dir: ReturnType<typeof tempDir>
let node: IngestNode
const clients: MqttClient[] = []

beforeAll(async () => {
  dir = tempDir('vf-overload-')
  node = await startTestNode(dir.path, { STORAGE_BACKLOG_ROWS: BOUND, PUBLISH_RATE: 10_000, PUBLISH_BURST: 100_000, BATCH_MAX_AGE_MS: 20 })
  for (const t of ['care-busy', 'care-quiet']) {
    await node.registry.createTenant(t, t)
    await node.registry.createPatient(t, `${t}-p`)
    for (const category of ['vitals', 'sleep', 'activity'] as const) {
      await node.registry.recordConsent({ tenant: t, patient: `${t}-p`, purpose: 'care', category, action: 'grant', recordedBy: 'nurse-1', source: 'paper_form', validFromMs: 0 })
    }
  }
}, 60_000)

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await node?.close()
  dir?.remove()
})

interface Sent { device: string; seq: number; rows: number }

describe('overload', () => {
  it('slows bulk senders within the bound, keeps alarms and the quiet tenant going, loses nothing, and drains', async () => {
    const fleet: Array<{ d: TestDevice; tenant: string }> = []
    for (let i = 0; i < 12; i++) fleet.push({ d: await enrollAndConnect(node, 'care-busy', `brc-busy-${i}`, 'bracelet', 'care-busy-p'), tenant: 'care-busy' })
    for (let i = 0; i < 2; i++) fleet.push({ d: await enrollAndConnect(node, 'care-quiet', `brc-quiet-${i}`, 'bracelet', 'care-quiet-p'), tenant: 'care-quiet' })
    const alarm = await enrollAndConnect(node, 'care-quiet', 'cal-quiet', 'calarm', 'care-quiet-p')
    const responderId = await node.registry.enrollDevice({ tenant: 'care-quiet', device: 'resp-quiet', family: 'responder', patient: null })
    const responder = await connectTls(node, 'resp-quiet', responderId.secret)
    clients.push(...fleet.map((f) => f.d.client), alarm.client, responder)
    const relayed = new Set<number>()
    responder.on('message', (_t, payload) => { relayed.add((JSON.parse(payload.toString()) as { seq: number }).seq) })
    await responder.subscribeAsync('v1/care-quiet/alerts', { qos: 1 })

    const acked: Sent[] = []
    let stop = false
    let maxBacklog = 0
    let maxWaiting = 0
    let quietAckedWhileBusyWaited = 0
    const sampler = setInterval(() => {
      maxBacklog = Math.max(maxBacklog, node.storage.backlog().rows)
      maxWaiting = Math.max(maxWaiting, node.admission.waiting)
    }, 5)
    const t0 = Date.now() - 30 * 86_400_000
    const publishers = fleet.flatMap(({ d, tenant }, i) => {
      const model = createBraceletModel(i)
      let window = 0
      return Array.from({ length: IN_FLIGHT }, async () => {
        while (!stop) {
          const batch = model.nextBatch(t0 + window++ * 60_000)
          const { topic, frame, seq } = d.sealer.seal('vitals', batch)
          if (!await publishAcked(d.client, topic, frame)) return
          acked.push({ device: d.enrollment.device, seq, rows: expectedRows('vitals', batch) })
          if (tenant === 'care-quiet' && (node.admission.waitingByTenant().get('care-busy') ?? 0) > 0) quietAckedWhileBusyWaited++
        }
      })
    })
    const alarms = createAlarmModel(9, { pressProbability: 1 })
    const alarmsAckedWhileShedding: number[] = []
    const presser = (async () => {
      while (!stop) {
        const { topic, frame, seq } = alarm.sealer.seal('alarm', alarms.next(Date.now() - 1000))
        if (!await publishAcked(alarm.client, topic, frame)) return
        if (node.admission.waiting > 0) alarmsAckedWhileShedding.push(seq)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000))
    stop = true
    await Promise.all([...publishers, presser])
    clearInterval(sampler)

    // it shed load, within its bounds
    expect(node.admission.sheddingEpisodes).toBeGreaterThan(0)
    expect(node.admission.waitedByTenant.get('care-busy') ?? 0).toBeGreaterThan(0)
    const maxRowsPerMessage = Math.max(...acked.map((a) => a.rows))
    expect(maxBacklog).toBeLessThanOrEqual(BOUND + maxRowsPerMessage)
    expect(maxWaiting).toBeLessThanOrEqual(fleet.length * IN_FLIGHT)
    // alarms went on while bulk waited, and each was relayed
    expect(alarmsAckedWhileShedding.length).toBeGreaterThan(0)
    for (let i = 0; i < 100 && !alarmsAckedWhileShedding.every((s) => relayed.has(s)); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(alarmsAckedWhileShedding.filter((s) => !relayed.has(s))).toEqual([])
    // the quiet tenant was served while the busy one had messages waiting
    expect(quietAckedWhileBusyWaited).toBeGreaterThan(0)

    // drained: every acknowledged bracelet batch stored exactly once, row for row
    expect(node.admission.waiting).toBe(0)
    const stored = await rowsOf<{ device_id: string; s: string; n: string }>(node,
      "SELECT device_id, toString(seq) AS s, count() AS n FROM {db}.vital_samples WHERE device_id LIKE 'brc-%' GROUP BY device_id, seq")
    const byKey = new Map(stored.map((r) => [`${r.device_id}/${r.s}`, Number(r.n)]))
    const wrong = acked.filter((a) => byKey.get(`${a.device}/${a.seq}`) !== a.rows)
    expect(wrong).toEqual([])
    expect(byKey.size).toBe(acked.length)
    expect(node.admission.shedding).toBe(false)
  }, 120_000)
})
