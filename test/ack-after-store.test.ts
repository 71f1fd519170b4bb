/**
 * VF_ACK_AFTER=store: a PUBACK only once the message's rows are inserted (embedded: and their part
 * synced to disk), not once they are in this node's write-ahead log. The stalls are fault hooks
 * (`beforeInsert` holds the spot measurements' inserts, `syncParts` holds the syncfs that makes an
 * inserted part durable), the only things not real here; the node, aedes, TLS, mqtt.js devices and
 * a responder, and chDB in a temp dir are.
 *
 * The same stall with the default (`log`) lets the PUBACK through: that contrast is what shows the
 * test can fail. No time is asserted: "no PUBACK yet" is read after things that come later in the
 * same node (the stalled insert has begun, so the message is in the log; an alarm sent afterwards is
 * relayed and acknowledged).
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { Config } from '../src/config/index.ts'
import { startNode, type IngestNode, type NodeFaults } from '../src/pipeline/index.ts'
import { createAlarmModel, createSpotModel } from '../devices/index.ts'
import { connectTls, enrollAndConnect, publishTracked as publish, rowsOf, tempDir, testConfig, until, type TestDevice } from './support/node.ts'

const T = 'care-ack'

interface Gate { promise: Promise<void>; release: () => void }
function gate (): Gate {
  let release!: () => void
  const promise = new Promise<void>((resolve) => { release = resolve })
  return { promise, release }
}

interface Kit { node: IngestNode; kit: TestDevice; alarm: TestDevice; responder: MqttClient; notices: Array<{ device: string; seq: number }> }

let dir: ReturnType<typeof tempDir> | null = null
let running: Kit | null = null
const clients: MqttClient[] = []
const gates: Gate[] = []
afterEach(async () => {
  for (const g of gates.splice(0)) g.release()
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
  await running?.node.close()
  running = null
  dir?.remove()
  dir = null
})

async function start (ackAfter: Config['ACK_AFTER'], faults: NodeFaults): Promise<Kit> {
  dir = tempDir('vf-ack-')
  const node = await startNode(testConfig(dir.path, { ACK_AFTER: ackAfter }), undefined, undefined, faults)
  running = { node } as Kit
  await node.registry.createTenant(T, 'Care ack')
  await node.registry.createPatient(T, 'p-ack')
  await node.registry.recordConsent({ tenant: T, patient: 'p-ack', purpose: 'care', category: 'spot_measurements', action: 'grant', recordedBy: 'nurse-1', source: 'paper_form', validFromMs: 0 })
  const kit = await enrollAndConnect(node, T, 'cvk-ack', 'cvitals', 'p-ack')
  const alarm = await enrollAndConnect(node, T, 'cal-ack', 'calarm', 'p-ack')
  const responderId = await node.registry.enrollDevice({ tenant: T, device: 'resp-ack', family: 'responder', patient: null })
  const responder = await connectTls(node, 'resp-ack', responderId.secret)
  clients.push(kit.client, alarm.client, responder)
  const notices: Array<{ device: string; seq: number }> = []
  responder.on('message', (_t, payload) => { notices.push(JSON.parse(payload.toString()) as { device: string; seq: number }) })
  await responder.subscribeAsync(`v1/${T}/alerts`, { qos: 1 })
  running = { node, kit, alarm, responder, notices }
  return running
}

/** A fall from the alarm device: relayed to the responder and acknowledged (its insert is not held). */
async function fallRelayedAndAcked (k: Kit, seed: number): Promise<void> {
  const fall = k.alarm.sealer.seal('alarm', createAlarmModel(seed, { fallProbability: 1 }).next(Date.now() - 1000))
  expect(await publish(k.alarm.client, fall).settled).toBe('acked')
  await until(() => k.notices.some((n) => n.seq === Number(fall.seq)))
}

/** What a query sees now, without waiting for the batches to ship (rowsOf flushes first). */
async function spotSeqsNow (node: IngestNode): Promise<string[]> {
  const r = await node.storage.conn.requests.client.query({ query: `SELECT toString(seq) AS s FROM ${node.storage.conn.table('spot_measurements')} WHERE device_id = 'cvk-ack'`, format: 'JSONEachRow' })
  return (await r.json<{ s: string }>()).map((x) => x.s)
}

const spotSeqs = async (node: IngestNode): Promise<string[]> =>
  (await rowsOf<{ s: string }>(node, 'SELECT toString(seq) AS s FROM {db}.spot_measurements WHERE device_id = {d:String} ORDER BY seq', { d: 'cvk-ack' })).map((r) => r.s)

/** A node whose spot-measurement inserts wait for `held` (and count how many began). */
async function startHoldingSpots (ackAfter: Config['ACK_AFTER']): Promise<{ k: Kit; held: Gate; entered: () => number }> {
  const held = gate()
  gates.push(held)
  let entered = 0
  const k = await start(ackAfter, {
    beforeInsert: async (table) => {
      if (table !== 'spot_measurements') return
      entered++
      await held.promise
    },
  })
  return { k, held, entered: () => entered }
}

describe('VF_ACK_AFTER while the inserts are held', () => {
  it('store: no PUBACK while the message\'s insert is held, nor for its resend; both answered once it is stored, stored once', async () => {
    const { k, held, entered } = await startHoldingSpots('store')
    const spot = k.kit.sealer.seal('spot', createSpotModel(3).next(Date.now() - 60_000))
    const first = publish(k.kit.client, spot)
    // the batch is queued only after its rows' log commit: once its insert is held, the message is in the log
    await until(() => entered() > 0)
    await fallRelayedAndAcked(k, 4)
    expect(first.state()).toBe('pending')

    // the device gives up on that connection and sends the message again on a new one: a resend of a
    // message still on its way is answered with it, not at once as a replay
    k.kit.client.end(true)
    const c2 = await connectTls(k.node, 'cvk-ack', k.kit.enrollment.secret)
    clients.push(c2)
    const resend = publish(c2, spot)
    await fallRelayedAndAcked(k, 5)
    expect(resend.state()).toBe('pending')
    expect(k.node.metrics.rejected['ING_ERR_REPLAY'] ?? 0).toBe(0)

    held.release()
    expect(await resend.settled).toBe('acked')
    expect(await spotSeqs(k.node)).toEqual([String(spot.seq)])
  }, 60_000)

  it('log (the default): the same held insert does not hold the PUBACK', async () => {
    const { k, held, entered } = await startHoldingSpots('log')
    const spot = k.kit.sealer.seal('spot', createSpotModel(3).next(Date.now() - 60_000))
    const first = publish(k.kit.client, spot)
    expect(await first.settled).toBe('acked')
    await until(() => entered() > 0)
    expect(await spotSeqsNow(k.node)).toEqual([]) // acknowledged, and not stored yet
    held.release()
    expect(await spotSeqs(k.node)).toEqual([String(spot.seq)])
  }, 60_000)
})

describe('VF_ACK_AFTER=store, embedded: the PUBACK waits for the part on disk', () => {
  it('holds the PUBACK while the syncfs after the insert is held, though the rows are already in chDB', async () => {
    let held: Gate | null = null
    const k = await start('store', { syncParts: async () => { if (held !== null) await held.promise } })
    held = gate()
    gates.push(held)
    const spot = k.kit.sealer.seal('spot', createSpotModel(6).next(Date.now() - 60_000))
    const first = publish(k.kit.client, spot)
    // inserted (a query sees it) but not yet synced: no PUBACK
    await until(async () => (await spotSeqsNow(k.node)).length > 0)
    expect(await spotSeqsNow(k.node)).toEqual([String(spot.seq)])
    // the alarm's own PUBACK waits for a sync too (store): the relay, on decode, does not
    const fall = k.alarm.sealer.seal('alarm', createAlarmModel(8, { fallProbability: 1 }).next(Date.now() - 1000))
    const fallAck = publish(k.alarm.client, fall)
    await until(() => k.notices.some((n) => n.seq === Number(fall.seq)))
    expect(first.state()).toBe('pending')
    expect(fallAck.state()).toBe('pending')
    held.release()
    held = null
    expect(await first.settled).toBe('acked')
    expect(await fallAck.settled).toBe('acked')
  }, 60_000)
})

describe('a new write-ahead log on a store that outlived the old one', () => {
  it('numbers its batches from 1 again, and ClickHouse does not take them for the old log\'s (each log directory has its own id in the tokens)', async () => {
    const k = await start('store', {})
    const first = k.kit.sealer.seal('spot', createSpotModel(11).next(Date.now() - 60_000))
    expect(await publish(k.kit.client, first).settled).toBe('acked')
    await k.kit.client.endAsync(true)
    await k.node.close()
    // the log's disk is gone; the store (here on the same disk) is not
    for (const lane of ['wal', 'wal-priority']) rmSync(join(dir!.path, lane), { recursive: true, force: true })
    const said: Array<{ level: number; msg: string; devicesInStore?: number }> = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => { said.push(JSON.parse(line) as { level: number; msg: string }) } })
    const node = await startNode(testConfig(dir!.path, { ACK_AFTER: 'store' }), logger)
    running = { ...k, node }
    // the operator is told: a new log on a store that holds messages
    expect(said).toEqual([expect.objectContaining({ level: 40, devicesInStore: 1, msg: expect.stringContaining('write-ahead log is new but the store already holds messages') as unknown })])
    const c = await connectTls(node, 'cvk-ack', k.kit.enrollment.secret)
    clients.push(c)
    // the same kind of message as the first message of the old log: the same table, LSN 1, the same batch
    const second = k.kit.sealer.seal('spot', createSpotModel(12).next(Date.now() - 60_000))
    expect(await publish(c, second).settled).toBe('acked')
    expect(await spotSeqs(node)).toEqual([String(first.seq), String(second.seq)])
  }, 60_000)
})

describe('VF_ACK_AFTER=store while storage refuses writes', () => {
  it('withholds the PUBACK (the log keeps the rows) and says it is not ready; once storage takes them, acknowledges and stores once', async () => {
    const k = await start('store', {})
    const table = k.node.storage.conn.table('spot_measurements')
    // a real refusal: the engine with the table detached
    await k.node.storage.conn.client.command({ query: `DETACH TABLE ${table}` })
    const spot = k.kit.sealer.seal('spot', createSpotModel(14).next(Date.now() - 60_000))
    const first = publish(k.kit.client, spot)
    await until(() => k.node.metrics.flushErrors > 0)
    await until(async () => (await fetch(`http://127.0.0.1:${k.node.http.port}/readyz`)).status === 503)
    await fallRelayedAndAcked(k, 15) // alarms go on: their own lane, their own table
    expect(first.state()).toBe('pending')
    await k.node.storage.conn.client.command({ query: `ATTACH TABLE ${table}` })
    expect(await first.settled).toBe('acked')
    expect(await spotSeqs(k.node)).toEqual([String(spot.seq)])
    expect((await fetch(`http://127.0.0.1:${k.node.http.port}/readyz`)).status).toBe(200)
  }, 60_000)
})
