/**
 * Faults between devices and the broker (a TCP proxy on loopback): latency,
 * stalls and connection resets make devices resend unacknowledged QoS 1
 * messages; each is stored exactly once. And a million random or mutated
 * frames through the ingest path: no crash, every one counted under a reason.
 */
import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConsentIndex } from '../src/consent/index.ts'
import { createIngest, createMetrics, type IngestNode } from '../src/pipeline/index.ts'
import type { StorageWriter } from '../src/storage/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.ts'
import { rowsOf, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let proxy: FaultProxy
let dev: Enrollment

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
  await node.registry.createTenant('care-f', 'F')
  dev = await node.registry.enrollDevice({ tenant: 'care-f', device: 'cal-f1', family: 'calarm', patient: null })
  proxy = await startFaultProxy({ host: '127.0.0.1', port: node.mqtts.port })
}, 60_000)
afterAll(async () => {
  await proxy?.close()
  await node?.close()
  dir?.remove()
})

describe('network faults between devices and the broker', () => {
  it('resends after resets, stalls and latency are stored exactly once', async () => {
    const client = mqtt.connect({
      protocol: 'mqtts', host: '127.0.0.1', port: proxy.port, ca: node.caPem, servername: 'localhost',
      clientId: dev.device, username: dev.device, password: dev.secret, clean: false, reconnectPeriod: 50, connectTimeout: 2000,
    })
    client.on('error', () => {})
    const sealer = new DeviceSealer({ tenant: dev.tenant, device: dev.device, keyId: 1, key: Buffer.from(dev.key, 'base64url') })
    const alarms = createAlarmModel(11)
    const sent: number[] = []
    const acks: Array<Promise<unknown>> = []
    let resets = 0
    const chaos = setInterval(() => {
      const r = Math.random()
      if (r < 0.4) { proxy.resetAll(); resets++ } else if (r < 0.6) { proxy.faults.stalled = true; setTimeout(() => { proxy.faults.stalled = false }, 80) } else proxy.faults.latencyMs = Math.floor(Math.random() * 30)
    }, 60)
    // device firmware: keep each sealed frame until it is acknowledged, and send it again after a reconnect
    // every frame waiting for the reconnect shares one listener
    let reconnected: Promise<void> | null = null
    const nextConnect = (): Promise<void> => reconnected ??= new Promise((resolve) => { client.once('connect', () => { reconnected = null; resolve() }) })
    const deliver = async (topic: string, frame: Buffer): Promise<void> => {
      for (;;) {
        if (!client.connected) { await nextConnect(); continue }
        try { await client.publishAsync(topic, frame, { qos: 1 }); return } catch { /* connection lost before the PUBACK: resend */ }
      }
    }
    for (let i = 0; i < 150; i++) {
      const { topic, frame, seq } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
      sent.push(seq)
      acks.push(deliver(topic, Buffer.from(frame)))
      // besides the random chaos (whose timer a loaded machine runs late), a reset every 40 frames while
      // they are being sent: frames in flight are lost at least four times, whatever the timing
      if (i % 40 === 20) { proxy.resetAll(); resets++ }
      await new Promise((resolve) => setTimeout(resolve, 3))
    }
    setTimeout(() => { clearInterval(chaos); proxy.faults.stalled = false; proxy.faults.latencyMs = 0 }, 1000)
    await Promise.all(acks)
    clearInterval(chaos)
    await client.endAsync()
    expect(resets).toBeGreaterThan(3)
    const rows = await rowsOf<{ s: string; n: string | number }>(node, "SELECT toString(seq) AS s, count() AS n FROM {db}.alarm_events WHERE device_id = 'cal-f1' GROUP BY seq")
    expect(rows.map((r) => Number(r.s)).sort((a, b) => a - b)).toEqual(sent)
    expect(rows.every((r) => Number(r.n) === 1)).toBe(true)
  }, 60_000)
})

describe('a million hostile frames', () => {
  it('never crash the ingest path, and every one is counted under a reason', () => {
    const rec = node.registry.device('cal-f1')!
    const metrics = createMetrics()
    const sink: StorageWriter = { write: () => Promise.resolve() }
    const ingest = createIngest({ consent: new ConsentIndex(), storage: sink, metrics })
    const sender = { record: rec, clientId: 'cal-f1', remoteAddress: '' }
    const sealer = new DeviceSealer({ tenant: dev.tenant, device: dev.device, keyId: 1, key: Buffer.from(dev.key, 'base64url') }, 1e9)
    const valid = Array.from({ length: 500 }, (_, i) => Buffer.from(sealer.seal(i % 2 === 0 ? 'alarm' : 'status', (i % 2 === 0
      ? createAlarmModel(i).next(Date.now() - 5000)
      : { reportedAtMs: Date.now(), model: 'm', firmware: 'f', serialNumber: 's', batteryPercent: 5, lastSyncMs: 0, diagnostics: [] }) as never).frame))
    const noise = randomBytes(1 << 20)
    const N = 1_000_000
    let seed = 12345
    const rand = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed }
    let outcomes = 0
    let unreasoned = 0
    for (let i = 0; i < N; i++) {
      let frame: Buffer
      if (i % 2 === 0) {
        const at = rand() % (noise.length - 600)
        frame = noise.subarray(at, at + (rand() % 600))
      } else {
        frame = Buffer.from(valid[rand() % valid.length]!)
        for (let k = 1 + (rand() % 3); k > 0; k--) frame[rand() % frame.length]! ^= 1 + (rand() % 255)
      }
      const out = ingest.ingest(sender, i % 7 === 0 ? 'v1/care-f/cal-f1/status' : 'v1/care-f/cal-f1/alarm', frame)
      if (out.kind === 'rejected' && !/^ING_ERR_[A-Z_]+$/.test(out.reason)) unreasoned++
      outcomes++
    }
    expect(unreasoned).toBe(0)
    const counted = Object.values(metrics.rejected).reduce((a, b) => a + b, 0) + Object.values(metrics.accepted).reduce((a, b) => a + b, 0)
    expect(outcomes).toBe(N)
    expect(counted).toBe(N)
    expect(metrics.accepted).toEqual({}) // a flipped byte never survives authentication
  }, 300_000)
})
