/**
 * A client we did not write, speaking MQTT 5: Debian's mosquitto_pub with
 * `-V mqttv5` publishes a sealed frame over TLS with the device's secret and
 * it is stored (PUBACK 0x00, the row read back), and a frame the node refuses
 * comes back as the refusal's reason code, which mosquitto_pub reports.
 * Skipped without mosquitto-clients, mandatory under CI (test/support/tools.ts).
 */
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect } from 'vitest'
import { DeviceSealer, createSpotModel } from '../devices/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { rowsOf, count, startTestNode, tempDir } from './support/node.ts'
import { requireTool } from './support/tools.ts'

const withMosquitto = requireTool('mosquitto_pub')
let dir: ReturnType<typeof tempDir>
let node: IngestNode
let dev: Enrollment
let sealer: DeviceSealer
const spots = createSpotModel(11)

beforeAll(async () => {
  dir = tempDir('vf-mosq5-')
  node = await startTestNode(join(dir.path, 'node'))
  await node.registry.createTenant('care-m', 'M')
  await node.registry.createPatient('care-m', 'pm')
  await node.registry.recordConsent({ tenant: 'care-m', patient: 'pm', purpose: 'care', category: 'spot_measurements', action: 'grant', recordedBy: 'nurse-1', source: 'paper_form', validFromMs: Date.now() - 86_400_000 })
  dev = await node.registry.enrollDevice({ tenant: 'care-m', device: 'cvk-m1', family: 'cvitals', patient: 'pm' })
  sealer = new DeviceSealer({ tenant: 'care-m', device: 'cvk-m1', keyId: dev.keyId, key: Buffer.from(dev.key, 'base64url') })
  writeFileSync(join(dir.path, 'ca.crt'), node.caPem!)
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

/** Runs mosquitto_pub (without blocking the event loop the node runs on) and returns its exit code and output. */
function mosquittoPub (file: string, topic: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('mosquitto_pub', ['-V', 'mqttv5', '-d', '-h', '127.0.0.1', '-p', String(node.mqtts.port), '--cafile', join(dir.path, 'ca.crt'),
      '-i', 'cvk-m1', '-u', 'cvk-m1', '-P', dev.secret, '-t', topic, '-q', '1', '-f', file], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1, out: stdout + stderr })
    })
  })
}

describe('mosquitto_pub -V mqttv5', () => {
  withMosquitto('publishes a sealed spot measurement at QoS 1: PUBACK 0x00 and the row is in storage', async () => {
    const { topic, frame, seq } = sealer.seal('spot', { ...spots.next(Date.now() - 60_000), systolic: 142 })
    writeFileSync(join(dir.path, 'ok.bin'), frame)
    const r = await mosquittoPub(join(dir.path, 'ok.bin'), topic)
    expect(r.code, r.out).toBe(0)
    expect(r.out).toMatch(/received CONNACK \(0\)/)
    expect(r.out).toMatch(/received PUBACK \(Mid: \d+, RC:0\)/)
    expect(await rowsOf(node, "SELECT systolic, toString(seq) AS seq FROM {db}.spot_measurements WHERE device_id = 'cvk-m1'")).toEqual([{ systolic: 142, seq: String(seq) }])
  })

  withMosquitto('a frame that is no envelope comes back as PUBACK 0x99 (payload format invalid) and is not stored', async () => {
    writeFileSync(join(dir.path, 'bad.bin'), 'not an envelope')
    const r = await mosquittoPub(join(dir.path, 'bad.bin'), 'v1/care-m/cvk-m1/spot')
    expect(r.out).toMatch(/received PUBACK \(Mid: \d+, RC:153\)/)
    expect(await count(node, 'spot_measurements', "device_id = 'cvk-m1'")).toBe(1)
    expect(await count(node, 'rejected_messages', "device_id = 'cvk-m1' AND reason = 'ING_ERR_ENVELOPE'")).toBe(1)
  })
})
