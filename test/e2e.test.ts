/**
 * End to end over real sockets: devices of every family publish sealed
 * protobuf at QoS 1 over TLS to a real aedes broker; rows land in a real chDB.
 * A PUBACK means the batch holding the message was inserted, so every count
 * below is read right after the publishers' acknowledgements.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { AlarmEvent, BraceletBatch, DeviceStatus, SpotMeasurement } from '../src/decode/index.ts'
import { DeviceSealer, encodePayload } from '../devices/envelope.ts'
import { count, connectTls, enrollAndConnect, rowsOf, startTestNode, tempDir, type TestDevice } from './support/node.ts'

const T = 'care-a'
const N = 3 // devices per family
const M = 5 // messages per device
const MIN = 60_000

function bracelet (start: number, k: number): BraceletBatch {
  return {
    windowStartMs: start,
    windowMs: MIN,
    heartRate: { offsetMs: 0, intervalMs: 1000, values: Array.from({ length: 60 }, (_, i) => 60 + ((i + k) % 25)) },
    heartRateQuality: Array.from({ length: 60 }, (_, i) => (i + k) % 5),
    spo2: { offsetMs: 30_000, intervalMs: MIN, values: [97] },
    respirationRate: { offsetMs: 30_000, intervalMs: MIN, values: [14 + (k % 3)] },
    skinTemperature: { offsetMs: 30_000, intervalMs: MIN, values: [33.5] },
    steps: { offsetMs: 0, intervalMs: MIN, values: [k * 10] },
    activeEnergy: { offsetMs: 0, intervalMs: MIN, values: [1.5] },
    sleep: [{ offsetMs: 0, durationMs: 30_000, stage: 2 }, { offsetMs: 30_000, durationMs: 30_000, stage: 3 }],
    batteryPercent: 80 - k,
  }
}
// 60 hr + spo2 + resp + skin + steps + energy + 2 sleep + battery
const ROWS_PER_BATCH = 60 + 5 + 2 + 1

const spot = (t: number, k: number): SpotMeasurement => ({ measuredAtMs: t, meterModel: "A&D UA-651BLE 'v2'", systolic: 120 + k, diastolic: 80, pulse: 64 })
const alarm = (t: number, kind: number): AlarmEvent => ({ occurredAtMs: t, kind, batteryPercent: 90, location: { latitude: 52.09, longitude: 5.12, accuracyM: 12 } })
const status = (t: number): DeviceStatus => ({
  reportedAtMs: t, model: 'cAlarm 3', firmware: '2.4.1', serialNumber: 'CA3-0001', batteryPercent: 77, lastSyncMs: t - 1000,
  diagnostics: ['boot ok', "tab\there 'quoted'\nsecond line"],
})

let dir: ReturnType<typeof tempDir>
let node: IngestNode
const clients: MqttClient[] = []
const t0 = Date.now() - 3_600_000

async function device (id: string, family: 'bracelet' | 'cvitals' | 'calarm', patient: string | null): Promise<TestDevice> {
  const d = await enrollAndConnect(node, T, id, family, patient)
  clients.push(d.client)
  return d
}

async function publish (d: TestDevice, stream: 'vitals' | 'spot' | 'alarm' | 'status', msg: never): Promise<void> {
  const { topic, frame } = d.sealer.seal(stream, msg)
  await d.client.publishAsync(topic, Buffer.from(frame), { qos: 1 })
}

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
  await node.registry.createTenant(T, 'Care A')
  await node.registry.createTenant('care-b', 'Care B')
  for (const p of ['p-consent', 'p-none']) await node.registry.createPatient(T, p)
  for (const category of ['vitals', 'sleep', 'activity', 'spot_measurements', 'location'] as const) {
    await node.registry.recordConsent({ tenant: T, patient: 'p-consent', purpose: 'care', category, action: 'grant', recordedBy: 'nurse-1', source: 'paper_form', validFromMs: t0 - 86_400_000 })
  }
}, 60_000)

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await node?.close()
  dir?.remove()
})

describe('ingest end to end over TLS at QoS 1', () => {
  it('stores exactly the rows sent by every family, field by field', async () => {
    const fleet = await Promise.all(Array.from({ length: N }, async (_, i) => ({
      b: await device(`brc-${i}`, 'bracelet', 'p-consent'),
      s: await device(`cvk-${i}`, 'cvitals', 'p-consent'),
      a: await device(`cal-${i}`, 'calarm', 'p-consent'),
    })))
    await Promise.all(fleet.flatMap(({ b, s, a }, i) => Array.from({ length: M }, async (_, k) => {
      const t = t0 + (i * M + k) * MIN
      await publish(b, 'vitals', bracelet(t, k) as never)
      await publish(s, 'spot', spot(t, k) as never)
      await publish(a, 'alarm', alarm(t, k % 2 === 0 ? 4 : 1) as never)
      await publish(a, 'status', status(t) as never)
    })))

    expect(await count(node, 'vital_samples', "device_id LIKE 'brc-%'")).toBe(N * M * ROWS_PER_BATCH)
    expect(await count(node, 'spot_measurements', "device_id LIKE 'cvk-%'")).toBe(N * M)
    expect(await count(node, 'alarm_events', "device_id LIKE 'cal-%'")).toBe(N * M)
    expect(await count(node, 'device_status', "device_id LIKE 'cal-%'")).toBe(N * M)
    expect(await count(node, 'rejected_messages')).toBe(0)

    // a sample of rows, field by field against what device 1 sent in its message k = 2
    const t = t0 + (1 * M + 2) * MIN
    const sent = bracelet(t, 2)
    const hr = await rowsOf<{ t_ms: string; value: number; quality: number; purpose: string; legal_basis: string; consent_version: number }>(node,
      `SELECT toUnixTimestamp64Milli(ts) AS t_ms, value, quality, purpose, legal_basis, consent_version FROM {db}.vital_samples
       WHERE device_id = 'brc-1' AND metric = 'heart_rate' AND ts >= fromUnixTimestamp64Milli({t:Int64}) AND ts < fromUnixTimestamp64Milli({t:Int64}) + INTERVAL 1 MINUTE ORDER BY ts`, { t })
    expect(hr.map((r) => Number(r.t_ms))).toEqual(sent.heartRate!.values.map((_, i) => t + i * 1000))
    expect(hr.map((r) => r.value)).toEqual(sent.heartRate!.values)
    expect(hr.map((r) => r.quality)).toEqual(sent.heartRateQuality)
    expect(new Set(hr.map((r) => `${r.purpose}/${r.legal_basis}`))).toEqual(new Set(['care/consent']))
    expect(hr.every((r) => Number(r.consent_version) >= 1)).toBe(true)

    const other = await rowsOf<{ metric: string; value: number; duration_ms: number; legal_basis: string }>(node,
      `SELECT metric, value, duration_ms, legal_basis FROM {db}.vital_samples WHERE device_id = 'brc-1' AND seq = (
         SELECT seq FROM {db}.vital_samples WHERE device_id = 'brc-1' AND metric = 'heart_rate' AND ts = fromUnixTimestamp64Milli({t:Int64})) AND metric != 'heart_rate'
       ORDER BY metric, ts`, { t })
    const byMetric = Object.fromEntries(other.filter((r) => r.metric !== 'sleep_stage').map((r) => [r.metric, r]))
    expect(byMetric['spo2']?.value).toBe(97)
    expect(byMetric['respiration_rate']?.value).toBe(16)
    expect(byMetric['skin_temperature']?.value).toBe(33.5)
    expect(byMetric['steps']).toMatchObject({ value: 20, duration_ms: MIN })
    expect(byMetric['battery']).toMatchObject({ value: 78, legal_basis: 'legitimate_interest' })
    expect(other.filter((r) => r.metric === 'sleep_stage').map((r) => [r.value, r.duration_ms])).toEqual([[2, 30_000], [3, 30_000]])

    const sp = await rowsOf(node, `SELECT meter_model, systolic, diastolic, pulse, spo2, weight FROM {db}.spot_measurements
      WHERE device_id = 'cvk-1' AND ts = fromUnixTimestamp64Milli({t:Int64})`, { t })
    expect(sp).toEqual([{ meter_model: "A&D UA-651BLE 'v2'", systolic: 122, diastolic: 80, pulse: 64, spo2: null, weight: null }])

    const al = await rowsOf(node, `SELECT kind, battery, latitude, longitude, legal_basis FROM {db}.alarm_events
      WHERE device_id = 'cal-1' AND ts = fromUnixTimestamp64Milli({t:Int64})`, { t })
    expect(al).toEqual([{ kind: 'heartbeat', battery: 90, latitude: 52.09, longitude: 5.12, legal_basis: 'contract' }])

    const st = await rowsOf(node, `SELECT model, serial_number, diagnostics, toUnixTimestamp64Milli(last_sync) AS last_sync FROM {db}.device_status
      WHERE device_id = 'cal-1' AND ts = fromUnixTimestamp64Milli({t:Int64})`, { t })
    expect(st.map((r) => ({ ...r, last_sync: Number(r['last_sync']) }))).toEqual([{ model: 'cAlarm 3', serial_number: 'CA3-0001', diagnostics: status(t).diagnostics, last_sync: t - 1000 }])
  }, 60_000)

  it('without a vitals grant stores no vitals but still stores the same patient\'s alarms', async () => {
    const b = await device('brc-none', 'bracelet', 'p-none')
    const a = await device('cal-none', 'calarm', 'p-none')
    await publish(b, 'vitals', bracelet(t0, 0) as never)
    await publish(a, 'alarm', alarm(t0, 2) as never)
    await publish(a, 'alarm', alarm(t0 + 1000, 1) as never)

    const vit = await rowsOf<{ category: string; n: string }>(node,
      `SELECT category, count() AS n FROM {db}.vital_samples WHERE patient_id = 'p-none' GROUP BY category`)
    // only the battery reading (device diagnostics, legitimate interest) is kept
    expect(vit.map((r) => [r.category, Number(r.n)])).toEqual([['device_diagnostics', 1]])
    const al = await rowsOf<{ kind: string; latitude: number | null }>(node,
      `SELECT kind, latitude FROM {db}.alarm_events WHERE patient_id = 'p-none' ORDER BY ts`)
    // the alarm rides on the contract; its location needs a location consent this patient did not give
    expect(al).toEqual([{ kind: 'fall_detected', latitude: null }, { kind: 'button_press', latitude: null }])
  }, 30_000)

  it('refuses tampered, wrongly keyed, undecodable and misaddressed messages, records them, and keeps serving others', async () => {
    const victim = await device('brc-victim', 'bracelet', 'p-consent')
    const attacker = await device('brc-attacker', 'bracelet', 'p-consent')
    const bystander = await device('cal-bystander', 'calarm', 'p-consent')
    const before = await count(node, 'vital_samples', "device_id IN ('brc-victim', 'brc-attacker')")
    const rejectedBefore = { ...node.metrics.rejected }

    // tampered: flip one ciphertext byte (the last byte of the frame is inside the tag)
    const good = attacker.sealer.seal('vitals', bracelet(t0, 1))
    const tampered = Buffer.from(good.frame)
    tampered[tampered.length - 1]! ^= 0x01
    await attacker.client.publishAsync(good.topic, tampered, { qos: 1 })
    // wrong key: sealed with a key that is not the device's
    const wrongKey = new DeviceSealer({ tenant: T, device: 'brc-attacker', keyId: 1, key: Buffer.alloc(32, 7) }, 100)
    const wk = wrongKey.seal('vitals', bracelet(t0, 2))
    await attacker.client.publishAsync(wk.topic, Buffer.from(wk.frame), { qos: 1 })
    // undecodable payload: valid seal around bytes that are not a BraceletBatch
    const junk = attacker.sealer.sealRaw('vitals', 200, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]))
    await attacker.client.publishAsync(good.topic, Buffer.from(junk), { qos: 1 })
    // a frame that is not an envelope at all
    await attacker.client.publishAsync(good.topic, Buffer.from('hello'), { qos: 1 })
    // bystander keeps being served while the attacker misbehaves
    await publish(bystander, 'alarm', alarm(t0, 1) as never)
    // misaddressed: the attacker publishes on the victim's topic; the broker disconnects it
    const forged = attacker.sealer.seal('vitals', bracelet(t0, 3))
    attacker.client.publish(`v1/${T}/brc-victim/vitals`, Buffer.from(forged.frame), { qos: 1 })
    await new Promise<void>((resolve) => { attacker.client.once('close', () => resolve()) })

    await publish(bystander, 'alarm', alarm(t0 + 1000, 1) as never)
    await publish(victim, 'vitals', bracelet(t0 + MIN, 0) as never)
    await node.storage.flush()

    // nothing from the attacker was stored; the victim's own message was
    expect(await count(node, 'vital_samples', "device_id IN ('brc-victim', 'brc-attacker')")).toBe(before + ROWS_PER_BATCH)
    expect(await count(node, 'alarm_events', "device_id = 'cal-bystander'")).toBe(2)
    const rejected = await rowsOf<{ reason: string; device_id: string; topic: string; bytes: number; detail: string }>(node,
      `SELECT reason, device_id, topic, bytes, detail FROM {db}.rejected_messages WHERE device_id = 'brc-attacker' ORDER BY ts`)
    expect(rejected.map((r) => r.reason)).toEqual(['ING_ERR_DECRYPT', 'ING_ERR_DECRYPT', 'ING_ERR_DECODE', 'ING_ERR_ENVELOPE', 'ING_ERR_DEVICE'])
    expect(rejected.every((r) => r.bytes > 0 && r.detail.length > 0)).toBe(true)
    expect(rejected[4]?.topic).toBe(`v1/${T}/brc-victim/vitals`)
    const delta = (reason: string): number => (node.metrics.rejected[reason] ?? 0) - (rejectedBefore[reason] ?? 0)
    expect([delta('ING_ERR_DECRYPT'), delta('ING_ERR_DECODE'), delta('ING_ERR_ENVELOPE'), delta('ING_ERR_DEVICE')]).toEqual([2, 1, 1, 1])
  }, 30_000)

  it('serves plain MQTT over TCP too, and never routes telemetry to subscribers', async () => {
    const d = await device('cal-tcp', 'calarm', 'p-consent')
    const tcp = await mqtt.connectAsync({ host: '127.0.0.1', port: node.mqtt!.port, clientId: 'cal-tcp', username: 'cal-tcp', password: d.enrollment.secret, reconnectPeriod: 0 })
    clients.push(tcp)
    // a device may not subscribe to telemetry, its own or anyone's: SUBACK 128
    for (const filter of [`v1/${T}/#`, `v1/${T}/cal-tcp/alarm`, '#', '$SYS/#', `v1/${T}/cal-0/cmd`]) {
      await expect(tcp.subscribeAsync(filter, { qos: 1 }), filter).rejects.toThrow(/Subscribe error/)
    }
    const own = await tcp.subscribeAsync(`v1/${T}/cal-tcp/cmd`, { qos: 1 })
    expect(own.map((g) => g.qos)).toEqual([1])
    let received = 0
    tcp.on('message', () => { received++ })
    const { topic, frame } = d.sealer.seal('alarm', alarm(t0, 1))
    await tcp.publishAsync(topic, Buffer.from(frame), { qos: 1 })
    expect(await count(node, 'alarm_events', "device_id = 'cal-tcp'")).toBe(1)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(received).toBe(0)
  })

  it('refuses a wrong secret and a client id that is not the device id', async () => {
    const d = await device('cal-auth', 'calarm', null)
    await expect(connectTls(node, 'cal-auth', 'not-the-secret')).rejects.toThrow()
    await expect(connectTls(node, 'cal-auth', d.enrollment.secret, 'someone-else')).rejects.toThrow()
    await node.storage.flush()
    const reasons = await rowsOf<{ reason: string }>(node, `SELECT reason FROM {db}.rejected_messages WHERE device_id = 'cal-auth' ORDER BY ts`)
    expect(reasons.map((r) => r.reason)).toEqual(['ING_ERR_AUTH', 'ING_ERR_CLIENT_ID'])
  }, 30_000)

  it('keeps every row across a restart on the same data directory, and devices publish again', async () => {
    const tables = ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status', 'rejected_messages']
    const before = await Promise.all(tables.map((t) => count(node, t)))
    expect(before.every((n) => n > 0)).toBe(true)
    const d = await device('cal-restart', 'calarm', 'p-consent')
    await publish(d, 'alarm', alarm(t0, 1) as never)
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    await node.close()

    node = await startTestNode(dir.path)
    const after = await Promise.all(tables.map((t) => count(node, t)))
    expect(after).toEqual(before.map((n, i) => n + (tables[i] === 'alarm_events' ? 1 : 0)))
    // keys and secrets came back from storage: the same device reconnects and publishes a later sequence number
    const again = await connectTls(node, 'cal-restart', d.enrollment.secret)
    clients.push(again)
    const { topic, frame } = d.sealer.seal('alarm', alarm(t0 + 1000, 2))
    await again.publishAsync(topic, Buffer.from(frame), { qos: 1 })
    expect(await count(node, 'alarm_events', "device_id = 'cal-restart'")).toBe(2)
    // and encoding is the family's own protobuf, not something the test invented
    expect(encodePayload('alarm', alarm(t0, 1)).length).toBeGreaterThan(0)
  }, 60_000)
})
