/**
 * A consent withdrawal while a bracelet streams at QoS 1 over TLS: the very
 * next message is filtered, also one already in flight, so no row of the
 * withdrawn category with a device time after the withdrawal is stored.
 * (Own file: chDB allows one data directory per process.)
 */
import { describe, expect, it } from 'vitest'
import { createBraceletModel, DeviceSealer } from '../devices/index.ts'
import { connectTls, count, rowsOf, startTestNode, tempDir } from './support/node.ts'

describe('withdrawal while a device streams', () => {
  it('stores no row of the withdrawn category with a device time after the withdrawal, at QoS 1 over TLS', async () => {
    const d = tempDir('vf-withdraw-')
    // a fast publisher: lift the per-client rate limit, which would otherwise refuse it
    const node = await startTestNode(d.path, { PUBLISH_RATE: 100_000, PUBLISH_BURST: 100_000 })
    try {
      await node.registry.createTenant('wd', 'wd')
      await node.registry.createPatient('wd', 'wd-p')
      for (const category of ['vitals', 'activity', 'sleep'] as const) await node.registry.recordConsent({ tenant: 'wd', patient: 'wd-p', purpose: 'care', category, action: 'grant', recordedBy: 'x', source: 'app', validFromMs: 0 })
      const e = await node.registry.enrollDevice({ tenant: 'wd', device: 'wd-brc', family: 'bracelet', patient: 'wd-p' })
      const client = await connectTls(node, 'wd-brc', e.secret)
      const sealer = new DeviceSealer({ tenant: 'wd', device: 'wd-brc', keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
      const model = createBraceletModel(3)
      // one-second windows starting at the device's clock (so the vitals are stamped at the moment of sending),
      // four publishers in parallel so messages are always in flight
      let stop = false
      let sent = 0
      const streaming = Promise.all(Array.from({ length: 4 }, async () => {
        while (!stop && client.connected) {
          const f = sealer.seal('vitals', model.nextBatch(Date.now(), 1000))
          await client.publishAsync(f.topic, Buffer.from(f.frame), { qos: 1 })
          sent++
        }
      }))
      await new Promise((resolve) => setTimeout(resolve, 500))
      const withdrawal = await node.registry.recordConsent({ tenant: 'wd', patient: 'wd-p', purpose: 'care', category: 'vitals', action: 'withdraw', recordedBy: 'x', source: 'app' })
      await new Promise((resolve) => setTimeout(resolve, 500))
      stop = true
      await streaming
      await client.endAsync()
      expect(sent).toBeGreaterThan(20)
      const after = await rowsOf<{ n: string; latest: string }>(node,
        `SELECT count() AS n, toString(toUnixTimestamp64Milli(max(ts))) AS latest FROM {db}.vital_samples WHERE category = 'vitals' AND ts > fromUnixTimestamp64Milli({w:Int64})`, { w: withdrawal.recordedAtMs })
      expect(Number(after[0]!.n)).toBe(0)
      // the stream itself went on: battery readings (no consent needed, stamped at each window's end) after the withdrawal, vitals before it
      expect(await count(node, 'vital_samples', "category = 'device_diagnostics' AND ts > fromUnixTimestamp64Milli({w:Int64})", { w: withdrawal.recordedAtMs })).toBeGreaterThan(0)
      expect(await count(node, 'vital_samples', "category = 'vitals' AND ts <= fromUnixTimestamp64Milli({w:Int64})", { w: withdrawal.recordedAtMs })).toBeGreaterThan(0)
    } finally {
      await node.close()
      d.remove()
    }
  }, 60_000)
})
