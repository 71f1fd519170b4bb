/** Replay protection that survives a restart, and payload-key rotation with an overlap, over real connections. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import type { IngestNode } from '../src/pipeline/index.ts'
import { encodePayload, createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { connectTls, count, enrollAndConnect, startTestNode, tempDir, type TestDevice } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let d: TestDevice
let client: MqttClient
const alarms = createAlarmModel(3)
const payload = () => encodePayload('alarm', alarms.next(Date.now() - 5000))
const TOPIC = 'v1/care-r/cal-r1/alarm'
const stored = () => count(node, 'alarm_events', "device_id = 'cal-r1'")
const rejected = (reason: string) => count(node, 'rejected_messages', "device_id = 'cal-r1' AND reason = {r:String}", { r: reason })
const send = (frame: Uint8Array) => client.publishAsync(TOPIC, Buffer.from(frame), { qos: 1 })

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
  await node.registry.createTenant('care-r', 'R')
  d = await enrollAndConnect(node, 'care-r', 'cal-r1', 'calarm', null)
  client = d.client
}, 60_000)
afterAll(async () => {
  await client?.endAsync(true).catch(() => {})
  await node?.close()
  dir?.remove()
})

describe('replay protection', () => {
  it('refuses the same frame twice and an older sequence number, before and after a restart', async () => {
    const f10 = d.sealer.sealRaw('alarm', 10, payload())
    const f20 = d.sealer.sealRaw('alarm', 20, payload())
    const f15 = d.sealer.sealRaw('alarm', 15, payload()) // sealed, never sent before the restart
    await send(f10)
    await send(f20)
    await send(f20) // exact replay
    await send(d.sealer.sealRaw('alarm', 20, payload())) // same number, fresh seal
    await send(f10) // older, already seen
    await node.storage.flush()
    expect(await stored()).toBe(2)
    expect(await rejected('ING_ERR_REPLAY')).toBe(3)

    await client.endAsync(true)
    await node.close()
    node = await startTestNode(dir.path)
    client = await connectTls(node, 'cal-r1', d.enrollment.secret)

    await send(f20)
    await send(f10)
    // a number below the high-water mark that was never stored (in flight at the crash) is still accepted once
    await send(f15)
    await send(f15)
    await send(d.sealer.sealRaw('alarm', 21, payload()))
    await node.storage.flush()
    expect(await stored()).toBe(4)
    expect(await rejected('ING_ERR_REPLAY')).toBe(3 + 3)
  }, 60_000)
})

describe('payload key rotation', () => {
  it('accepts the old key during the overlap and refuses it after, while the new key works', async () => {
    const oldSealer = d.sealer
    const r = await node.registry.rotateKey('care-r', 'cal-r1', 400)
    expect(r.keyId).toBe(2)
    const newSealer = new DeviceSealer({ tenant: 'care-r', device: 'cal-r1', keyId: 2, key: Buffer.from(r.key, 'base64url') })
    const before = await stored()
    await send(oldSealer.sealRaw('alarm', 100, payload())) // sealed before the device switched
    await send(newSealer.sealRaw('alarm', 101, payload()))
    expect(await stored()).toBe(before + 2)
    await new Promise((resolve) => setTimeout(resolve, 500))
    await send(oldSealer.sealRaw('alarm', 102, payload()))
    await send(newSealer.sealRaw('alarm', 103, payload()))
    await node.storage.flush()
    expect(await stored()).toBe(before + 3)
    expect(await rejected('ING_ERR_KEY')).toBe(1)
    // the rotation survives a restart: key 1 stays retired, key 2 stays current
    await client.endAsync(true)
    await node.close()
    node = await startTestNode(dir.path)
    client = await connectTls(node, 'cal-r1', d.enrollment.secret)
    await send(oldSealer.sealRaw('alarm', 104, payload()))
    await send(newSealer.sealRaw('alarm', 105, payload()))
    await node.storage.flush()
    expect(await stored()).toBe(before + 4)
    expect(await rejected('ING_ERR_KEY')).toBe(2)
  }, 60_000)
})
