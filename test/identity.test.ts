/** Device bindings over time and gateway phones publishing for their bracelets, over real connections. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createBraceletModel, DeviceSealer } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { connectTls, rowsOf, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const clients: MqttClient[] = []
const MIN = 60_000
const model = createBraceletModel(9)
const sealerOf = (e: Enrollment, seq = 1) => new DeviceSealer({ tenant: e.tenant, device: e.device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') }, seq)

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
  for (const t of ['care-g', 'care-h']) {
    await node.registry.createTenant(t, t)
    for (const p of ['p1', 'p2']) {
      await node.registry.createPatient(t, p)
      for (const category of ['vitals', 'sleep', 'activity'] as const) {
        await node.registry.recordConsent({ tenant: t, patient: p, purpose: 'care', category, action: 'grant', recordedBy: 'x', source: 'app', validFromMs: 0 })
      }
    }
  }
}, 60_000)
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await node?.close()
  dir?.remove()
})

describe('enrolment', () => {
  it('two enrolments of the same device id at once: one gets the credentials, the other a conflict, and the stored secret is the winner\'s', async () => {
    const tries = await Promise.allSettled([0, 1, 2].map(async () => await node.registry.enrollDevice({ tenant: 'care-g', device: 'twin-1', family: 'calarm', patient: 'p1' })))
    const won = tries.filter((t): t is PromiseFulfilledResult<Enrollment> => t.status === 'fulfilled')
    expect(won).toHaveLength(1)
    for (const t of tries) if (t.status === 'rejected') expect((t.reason as { code: string }).code).toBe('ING_ERR_CONFLICT')
    expect(await node.registry.authenticate('twin-1', won[0]!.value.secret)).not.toBeNull()
  })
})

describe('bindings over time', () => {
  it('attributes data by the binding valid at the data\'s time, also after a restart', async () => {
    const e = await node.registry.enrollDevice({ tenant: 'care-g', device: 'brc-1', family: 'bracelet', patient: 'p1' })
    const switchAt = Date.now() - 30 * MIN
    await node.registry.bindDevice('care-g', 'brc-1', 'p2', switchAt)
    await expect(node.registry.bindDevice('care-g', 'brc-1', 'p1', switchAt - 1)).rejects.toThrow(/after the current one/)
    const c = await connectTls(node, 'brc-1', e.secret)
    clients.push(c)
    const s = sealerOf(e)
    for (const start of [switchAt - 2 * MIN, switchAt + MIN]) {
      const { topic, frame } = s.seal('vitals', model.nextBatch(start))
      await c.publishAsync(topic, Buffer.from(frame), { qos: 1 })
    }
    const byPatient = async () => Object.fromEntries((await rowsOf<{ patient_id: string; first: string }>(node,
      `SELECT patient_id, toString(min(toUnixTimestamp64Milli(ts))) AS first FROM {db}.vital_samples WHERE device_id = 'brc-1' GROUP BY patient_id`))
      .map((r) => [r.patient_id, Number(r.first)]))
    const seen = await byPatient()
    expect(Object.keys(seen).sort()).toEqual(['p1', 'p2'])
    expect(seen['p1']).toBeLessThan(switchAt)
    expect(seen['p2']).toBeGreaterThanOrEqual(switchAt)

    await c.endAsync(true)
    await node.close()
    node = await startTestNode(dir.path)
    const d = node.registry.device('brc-1')!
    expect([node.registry.patientAt(d, switchAt - 1), node.registry.patientAt(d, switchAt), d.patient]).toEqual(['p1', 'p2', 'p2'])
  }, 60_000)
})

describe('gateway phones', () => {
  it('a gateway publishes for the bracelets bound to it, and for no other device', async () => {
    const gw = await node.registry.enrollDevice({ tenant: 'care-g', device: 'gw-1', family: 'gateway', patient: null })
    const gw2 = await node.registry.enrollDevice({ tenant: 'care-g', device: 'gw-2', family: 'gateway', patient: null })
    const mine = await node.registry.enrollDevice({ tenant: 'care-g', device: 'brc-gw1', family: 'bracelet', patient: 'p1', gateway: 'gw-1' })
    const theirs = await node.registry.enrollDevice({ tenant: 'care-g', device: 'brc-gw2', family: 'bracelet', patient: 'p1', gateway: 'gw-2' })
    const unbound = await node.registry.enrollDevice({ tenant: 'care-g', device: 'brc-free', family: 'bracelet', patient: 'p1' })
    const elsewhere = await node.registry.enrollDevice({ tenant: 'care-h', device: 'brc-h', family: 'bracelet', patient: 'p1' })
    await expect(node.registry.setGateway('care-h', 'brc-h', 'gw-1')).rejects.toThrow(/no gateway/)
    expect(gw2.device).toBe('gw-2')

    const count = async (device: string) => Number((await rowsOf<{ n: string }>(node, 'SELECT count() AS n FROM {db}.vital_samples WHERE device_id = {d:String}', { d: device }))[0]!.n)
    const c = await connectTls(node, 'gw-1', gw.secret)
    clients.push(c)
    // the bracelet seals with its own key; the gateway only carries the frame
    const { topic, frame } = sealerOf(mine).seal('vitals', model.nextBatch(Date.now() - 5 * MIN))
    await c.publishAsync(topic, Buffer.from(frame), { qos: 1 })
    expect(await count('brc-gw1')).toBeGreaterThan(60)

    for (const target of [theirs, unbound, elsewhere]) {
      const g = await connectTls(node, 'gw-1', gw.secret)
      clients.push(g)
      const f = sealerOf(target).seal('vitals', model.nextBatch(Date.now() - 5 * MIN))
      const closed = new Promise<void>((resolve) => { g.once('close', () => { resolve() }) })
      g.publish(f.topic, Buffer.from(f.frame), { qos: 1 })
      await closed
      expect(await count(target.device)).toBe(0)
    }
    // a gateway that is moved away loses the right at once
    await node.registry.setGateway('care-g', 'brc-gw1', null)
    const g = await connectTls(node, 'gw-1', gw.secret)
    clients.push(g)
    const closed = new Promise<void>((resolve) => { g.once('close', () => { resolve() }) })
    const f = sealerOf(mine, 100).seal('vitals', model.nextBatch(Date.now() - 4 * MIN))
    g.publish(f.topic, Buffer.from(f.frame), { qos: 1 })
    await closed
  }, 60_000)
})
