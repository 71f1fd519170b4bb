/**
 * A message that waits for storage (admission, storage behind) while its connection closes, and the
 * device sends it again on a new connection before it is let through. Found in a fleet soak at speed 12:
 * the resend was refused as a replay and acknowledged at once (3.1.1 acknowledges a replay), then the
 * first copy was let through, found its connection gone and was dropped (ING_ERR_ABANDONED): acknowledged
 * and never stored, 135,000 samples of 36 M. The resend must be answered with the first copy, and when
 * that is abandoned, not at all, so the device sends it once more and it is stored once.
 * Real node, aedes, TLS, mqtt.js and chDB in a temp dir; the one fault hook holds the bracelet samples'
 * inserts so that storage stays behind for as long as the test needs.
 */
import type { MqttClient } from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { createAlarmModel, createBraceletModel, expectedRows } from '../devices/index.ts'
import { connectTls, enrollAndConnect, publishTracked as publish, rowsOf, tempDir, testConfig, until } from './support/node.ts'

const T = 'care-resend'
let dir: ReturnType<typeof tempDir> | null = null
let node: IngestNode | null = null
const clients: MqttClient[] = []
let release = (): void => {}
afterAll(async () => {
  release()
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await node?.close()
  dir?.remove()
})

describe('a resend of a message waiting for storage', () => {
  it('is not acknowledged before the first copy, and is stored once after that copy is abandoned', async () => {
    dir = tempDir('vf-resend-')
    let holding = true
    const held = new Promise<void>((resolve) => { release = () => { holding = false; resolve() } })
    node = await startNode(testConfig(dir.path, { STORAGE_BACKLOG_ROWS: 10 }), undefined, undefined, {
      beforeInsert: async (table) => { if (table === 'vital_samples' && holding) await held },
    })
    const n = node
    await n.registry.createTenant(T, T)
    await n.registry.createPatient(T, 'p-r')
    for (const category of ['vitals', 'sleep', 'activity'] as const) {
      await n.registry.recordConsent({ tenant: T, patient: 'p-r', purpose: 'care', category, action: 'grant', recordedBy: 'nurse-1', source: 'paper_form', validFromMs: 0 })
    }
    const brc = await enrollAndConnect(n, T, 'brc-r', 'bracelet', 'p-r')
    const cal = await enrollAndConnect(n, T, 'cal-r', 'calarm', 'p-r')
    clients.push(brc.client, cal.client)
    const model = createBraceletModel(4)
    const t0 = Date.now() - 86_400_000

    // the first batch is logged (and acknowledged); its insert is held, so storage is behind the bound of 10 rows
    const first = brc.sealer.seal('vitals', model.nextBatch(t0))
    expect(await publish(brc.client, first).settled).toBe('acked')
    await until(() => n.storage.backlog().rows > 10)
    // the second waits for storage, unacknowledged
    const batch = model.nextBatch(t0 + 60_000)
    const second = brc.sealer.seal('vitals', batch)
    const original = publish(brc.client, second)
    await until(() => n.admission.waiting === 1)

    // the phone loses that connection and sends the batch again on a new one while the first copy waits
    brc.client.end(true)
    const c2 = await connectTls(n, 'brc-r', brc.enrollment.secret)
    clients.push(c2)
    const resend = publish(c2, second)
    // later traffic of the same node has been served: an alarm is acknowledged meanwhile
    const fall = cal.sealer.seal('alarm', createAlarmModel(2, { fallProbability: 1 }).next(Date.now() - 1000))
    expect(await publish(cal.client, fall).settled).toBe('acked')
    expect(resend.state()).toBe('pending')
    expect(n.metrics.rejected['ING_ERR_REPLAY'] ?? 0).toBe(0)
    expect(await original.settled).toBe('closed')

    // storage catches up: the first copy finds its connection gone and is dropped; the resend is not
    // acknowledged for it, and the device's next try is taken
    release()
    let answer = await resend.settled
    for (let i = 0; answer === 'closed' && i < 5; i++) {
      const c = await connectTls(n, 'brc-r', brc.enrollment.secret)
      clients.push(c)
      answer = await publish(c, second).settled
    }
    expect(answer).toBe('acked')
    expect(n.admission.abandoned).toBe(1)
    const stored = await rowsOf<{ c: string }>(n, 'SELECT toString(count()) AS c FROM {db}.vital_samples WHERE device_id = {d:String} AND seq = {s:UInt64}', { d: 'brc-r', s: second.seq })
    expect(Number(stored[0]!.c)).toBe(expectedRows('vitals', batch))
  }, 60_000)
})
