/**
 * MQTT 5 on a node that cannot make data durable (its disk below the free-space
 * reserve) and whose tenant is at its connection limit: the device is told
 * "node busy, send it again later" (PUBACK 0x97) and keeps its connection; a
 * connection over the tenant's limit gets CONNACK 0x97. A node of its own
 * (chDB allows one data directory per process, so one file per node).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DeviceSealer, createAlarmModel } from '../devices/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { DEVICE_ANSWERS } from '../src/reasons.ts'
import { Raw5 } from './support/raw-mqtt5.ts'
import { startTestNode, tempDir } from './support/node.ts'

const NOW = Date.now()
const alarms = createAlarmModel(9)
describe('MQTT 5 on a node that cannot store or is full', () => {
  let full: IngestNode
  let fullDir: ReturnType<typeof tempDir>
  beforeAll(async () => {
    fullDir = tempDir('vf-mqtt5-full-')
    // more free disk demanded than any machine has: the write-ahead log takes nothing; and one connection per tenant
    full = await startTestNode(fullDir.path, { DISK_RESERVE_BYTES: 1024 ** 4, MAX_CONNECTIONS_PER_TENANT: 1 })
    await full.registry.createTenant('care-f', 'F')
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
})
