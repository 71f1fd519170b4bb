/**
 * A fall reaches its responder while the telemetry lane of the write-ahead log
 * is stalled. The stall is a fault hook (`beforeWalWrite`, the only thing not
 * real here: a disk whose fsync hangs cannot be made on this machine without
 * root): the bulk lane's next group commit waits on it. Everything else is a
 * real node — aedes, TLS, mqtt.js devices and a responder, chDB in a temp dir.
 *
 * With one log for everything (before the lane), the alarm's commit queued
 * behind the stalled telemetry commit: no PUBACK, no relay, until the stall
 * ended. Now the alarm is committed in its own lane, acknowledged, relayed and
 * stored while the spot measurement sent before it still waits.
 */
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { createAlarmModel, createSpotModel } from '../devices/index.ts'
import { connectTls, enrollAndConnect, rowsOf, tempDir, testConfig, type TestDevice } from './support/node.ts'

const T = 'care-lane'
let dir: ReturnType<typeof tempDir>
let node: IngestNode
let stalled: { promise: Promise<void>; release: () => void } | null = null
let priorityStalled: { promise: Promise<void>; release: () => void } | null = null
const clients: MqttClient[] = []

function gate (): { promise: Promise<void>; release: () => void } {
  let release!: () => void
  const promise = new Promise<void>((resolve) => { release = resolve })
  return { promise, release }
}
function stall (): void { stalled = gate() }

/** Settles with the value, or with 'pending' if it has not settled within `ms`. */
async function within<T> (p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined
  const out = await Promise.race([p, new Promise<'pending'>((resolve) => { timer = setTimeout(() => { resolve('pending') }, ms) })])
  clearTimeout(timer)
  return out
}

beforeAll(async () => {
  dir = tempDir('vf-lane-')
  node = await startNode(testConfig(dir.path), undefined, undefined, {
    beforeWalWrite: async (lane) => {
      if (lane === 'bulk' && stalled !== null) await stalled.promise
      if (lane === 'priority' && priorityStalled !== null) await priorityStalled.promise
    },
  })
  await node.registry.createTenant(T, 'Care lane')
  await node.registry.createPatient(T, 'p-lane')
  await node.registry.recordConsent({ tenant: T, patient: 'p-lane', purpose: 'care', category: 'spot_measurements', action: 'grant', recordedBy: 'nurse-1', source: 'paper_form', validFromMs: 0 })
}, 60_000)

afterAll(async () => {
  stalled?.release()
  priorityStalled?.release()
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await node?.close()
  dir?.remove()
})

describe('alarm lane', () => {
  it('acknowledges, relays and stores a fall while the telemetry lane is stalled', async () => {
    const kit: TestDevice = await enrollAndConnect(node, T, 'cvk-lane', 'cvitals', 'p-lane')
    const alarm: TestDevice = await enrollAndConnect(node, T, 'cal-lane', 'calarm', 'p-lane')
    const responderId = await node.registry.enrollDevice({ tenant: T, device: 'resp-lane', family: 'responder', patient: null })
    const responder = await connectTls(node, 'resp-lane', responderId.secret)
    clients.push(kit.client, alarm.client, responder)
    const notices: Array<{ device: string; seq: number; kind: string }> = []
    responder.on('message', (_t, payload) => { notices.push(JSON.parse(payload.toString()) as { device: string; seq: number; kind: string }) })
    await responder.subscribeAsync(`v1/${T}/alerts`, { qos: 1 })

    stall()
    const spot = kit.sealer.seal('spot', createSpotModel(3).next(Date.now() - 60_000))
    const spotAck = kit.client.publishAsync(spot.topic, Buffer.from(spot.frame), { qos: 1 }).then(() => 'acked' as const, () => 'closed' as const)
    // the spot measurement's commit has begun and waits on the stall before the alarm is sent
    await new Promise((resolve) => setTimeout(resolve, 100))

    const fall = alarm.sealer.seal('alarm', createAlarmModel(4, { fallProbability: 1 }).next(Date.now() - 1000))
    expect(await within(alarm.client.publishAsync(fall.topic, Buffer.from(fall.frame), { qos: 1 }).then(() => 'acked' as const), 10_000)).toBe('acked')
    for (let i = 0; i < 200 && notices.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25))
    expect(notices).toHaveLength(1)
    expect(notices[0]).toMatchObject({ device: 'cal-lane', seq: Number(fall.seq), kind: 'fall_detected' })
    // stored while the telemetry lane is still stalled (read back from ClickHouse)
    const stored = await rowsOf<{ s: string; kind: string }>(node, 'SELECT toString(seq) AS s, kind FROM {db}.alarm_events WHERE device_id = {d:String}', { d: 'cal-lane' })
    expect(stored).toEqual([{ s: String(fall.seq), kind: 'fall_detected' }])
    expect(await within(spotAck, 50)).toBe('pending')

    stalled!.release()
    stalled = null
    expect(await within(spotAck, 10_000)).toBe('acked')
    const spots = await rowsOf<{ s: string }>(node, 'SELECT toString(seq) AS s FROM {db}.spot_measurements WHERE device_id = {d:String}', { d: 'cvk-lane' })
    expect(spots).toEqual([{ s: String(spot.seq) }])
  })

  it('relays a fall on decode, before its own commit; the PUBACK waits for the commit', async () => {
    const alarm: TestDevice = await enrollAndConnect(node, T, 'cal-lane-2', 'calarm', 'p-lane')
    const responderId = await node.registry.enrollDevice({ tenant: T, device: 'resp-lane-2', family: 'responder', patient: null })
    const responder = await connectTls(node, 'resp-lane-2', responderId.secret)
    clients.push(alarm.client, responder)
    const notices: Array<{ device: string; seq: number }> = []
    responder.on('message', (_t, payload) => { notices.push(JSON.parse(payload.toString()) as { device: string; seq: number }) })
    await responder.subscribeAsync(`v1/${T}/alerts`, { qos: 1 })

    priorityStalled = gate()
    const press = alarm.sealer.seal('alarm', createAlarmModel(7, { pressProbability: 1 }).next(Date.now() - 1000))
    const ack = alarm.client.publishAsync(press.topic, Buffer.from(press.frame), { qos: 1 }).then(() => 'acked' as const, () => 'closed' as const)
    for (let i = 0; i < 200 && notices.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25))
    expect(notices).toEqual([expect.objectContaining({ device: 'cal-lane-2', seq: Number(press.seq) })])
    expect(await within(ack, 50)).toBe('pending')
    priorityStalled.release()
    priorityStalled = null
    expect(await within(ack, 10_000)).toBe('acked')
    const stored = await rowsOf<{ s: string }>(node, 'SELECT toString(seq) AS s FROM {db}.alarm_events WHERE device_id = {d:String}', { d: 'cal-lane-2' })
    expect(stored).toEqual([{ s: String(press.seq) }])
  })
})
