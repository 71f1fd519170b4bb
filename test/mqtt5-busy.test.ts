/**
 * MQTT 5 on a node that cannot make data durable (its disk below the free-space
 * reserve) and whose tenant is at its connection limit: the device is told
 * "node busy, send it again later" (PUBACK 0x97) and keeps its connection; a
 * connection over the tenant's limit gets CONNACK 0x97, and a login while
 * every secret-check slot is taken CONNACK 0x89. A node of its own
 * (chDB allows one data directory per process, so one file per node).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DeviceSealer, createAlarmModel } from '../devices/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { DEVICE_ANSWERS } from '../src/reasons.ts'
import { Raw5 } from './support/raw-mqtt5.ts'
import { hashSecret, type Enrollment } from '../src/registry/index.ts'
import { startTestNode, tempDir } from './support/node.ts'

const NOW = Date.now()
const alarms = createAlarmModel(9)
describe('MQTT 5 on a node that cannot store or is full', () => {
  let full: IngestNode
  let fullDir: ReturnType<typeof tempDir>
  let legacy: Enrollment
  const OPTIONS = { DISK_RESERVE_BYTES: 1024 ** 4, MAX_CONNECTIONS_PER_TENANT: 1, HASH_THREADS: 1, HASH_QUEUE: 0 }
  beforeAll(async () => {
    fullDir = tempDir('vf-mqtt5-full-')
    // more free disk demanded than any machine has: the write-ahead log takes nothing; and one connection per tenant
    full = await startTestNode(fullDir.path, OPTIONS)
    await full.registry.createTenant('care-f', 'F')
    await full.registry.createTenant('care-h', 'H')
    // a device whose secret an earlier version stored as scrypt: its check needs a hash thread (there is one, and no queue)
    legacy = await full.registry.enrollDevice({ tenant: 'care-h', device: 'cal-h1', family: 'calarm', patient: null })
    await full.storage.conn.client.insert({
      table: full.storage.conn.table('devices'), format: 'JSONEachRow',
      values: [{ tenant_id: 'care-h', device_id: legacy.device, family: 'calarm', patient_id: '', secret_hash: await hashSecret(full.hasher, legacy.secret, 14), gateway_id: '', updated_at: Date.now() + 1 }],
    })
    await full.close()
    full = await startTestNode(fullDir.path, OPTIONS)
  }, 60_000)
  afterAll(async () => {
    await full?.close()
    fullDir?.remove()
  })

  it('a message it cannot make durable is PUBACK 0x97 "node busy", the connection stays up, and a second connection of the tenant gets CONNACK 0x97', async () => {
    const e = await full.registry.enrollDevice({ tenant: 'care-f', device: 'cal-f1', family: 'calarm', patient: null })
    const sealer = new DeviceSealer({ tenant: 'care-f', device: 'cal-f1', keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
    const r = await Raw5.open(full.mqtt!.port)
    expect(await r.connect('cal-f1', 'cal-f1', e.secret)).toMatchObject({ reasonCode: 0 })
    for (const id of [1, 2]) {
      const f = sealer.seal('alarm', alarms.next(NOW - 5000))
      r.send({ cmd: 'publish', topic: f.topic, payload: Buffer.from(f.frame), qos: 1, messageId: id, retain: false, dup: false })
      expect(await r.next()).toMatchObject({ cmd: 'puback', messageId: id, reasonCode: 0x97, properties: { reasonString: DEVICE_ANSWERS.diskFull.text } })
    }
    expect(r.closed).toBe(false)
    const e2 = await full.registry.enrollDevice({ tenant: 'care-f', device: 'cal-f2', family: 'calarm', patient: null })
    const r2 = await Raw5.open(full.mqtt!.port)
    expect(await r2.connect('cal-f2', 'cal-f2', e2.secret)).toMatchObject({ cmd: 'connack', reasonCode: 0x97, properties: { reasonString: DEVICE_ANSWERS.connLimit.text } })
    await r2.closedByBroker()
    r.end()
  })

  it('a login while every secret check slot is taken is CONNACK 0x89 (server busy)', async () => {
    // four at once: the first takes the one hash thread (scrypt, cost 14), the others find no room
    const answers = await Promise.all(Array.from({ length: 4 }, async () => {
      const r = await Raw5.open(full.mqtt!.port)
      const p = await r.connect('cal-h1', 'cal-h1', legacy.secret)
      r.end()
      return p as { reasonCode?: number; properties?: { reasonString?: string } } | null
    }))
    const codes = answers.map((a) => a?.reasonCode)
    expect(codes.filter((c) => c !== 0 && c !== 0x89)).toEqual([])
    expect(codes).toContain(0x89)
    expect(answers.find((a) => a?.reasonCode === 0x89)?.properties?.reasonString).toBe(DEVICE_ANSWERS.authHashBusy.text)
    expect(full.metrics.rejected['ING_ERR_AUTH_BUSY']).toBeGreaterThan(0)
  })
})
