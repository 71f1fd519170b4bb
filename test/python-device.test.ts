/**
 * The Python reference device (examples/python-device), a client we did not
 * write in TypeScript, built from docs/device-protocol.md: it checks the
 * published test vectors with its own code (PyNaCl, Python protobuf), then
 * connects over TLS with its id and secret to a real node, seals and publishes
 * one message per stream at QoS 1 with sequence numbers at the top of the
 * uint64 range, and the rows are read back. A wrong tenant gets it
 * disconnected: no PUBACK, and it exits non-zero.
 *
 * Needs Debian's /usr/bin/python3 with python3-nacl, python3-paho-mqtt and
 * python3-protobuf; skipped without them, except on CI (CI=true), where it fails.
 */
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Enrollment } from '../src/registry/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { DEVICE_ANSWERS } from '../src/reasons.ts'
import { count, rowsOf, startTestNode, tempDir } from './support/node.ts'

const PYTHON = '/usr/bin/python3'
const DEVICE = fileURLToPath(new URL('../examples/python-device/device.py', import.meta.url))
const PROTO = fileURLToPath(new URL('../proto', import.meta.url))
const GENERATED = fileURLToPath(new URL('../examples/python-device/vitalflow_pb', import.meta.url))
const VECTORS = fileURLToPath(new URL('../docs/test-vectors.json', import.meta.url))
const INSTALL = '(apt-get install python3-nacl python3-paho-mqtt python3-protobuf)'
const CI = process.env['CI'] === 'true'

/** Why the device cannot run here, or null when it can. */
function missing (): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`
  const r = spawnSync(PYTHON, ['-c', 'import nacl.bindings, paho.mqtt.client, google.protobuf'], { encoding: 'utf8' })
  return r.status === 0 ? null : `${PYTHON} cannot import nacl, paho.mqtt or google.protobuf`
}
const absent = missing()
if (absent !== null && !CI) console.log(`skipped: Python reference device: ${absent} ${INSTALL}`)

/** Runs the device without blocking the event loop (the node under test runs in this process). */
function runDevice (args: string[]): Promise<{ code: number; lines: Array<Record<string, unknown>>; stderr: string }> {
  return new Promise((resolve) => {
    execFile(PYTHON, [DEVICE, '--vectors', VECTORS, ...args], { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
      resolve({ code, lines, stderr })
    })
  })
}

describe('Python reference device', () => {
  it.runIf(absent !== null && CI)('has its prerequisites on CI', () => {
    throw new Error(`CI=true but ${absent} ${INSTALL}`)
  })

  describe.skipIf(absent !== null)('against a real node', () => {
    let dir: ReturnType<typeof tempDir>
    let node: IngestNode
    let dev: Enrollment
    let ca: string
    const TOP = 2n ** 64n - 1n

    beforeAll(async () => {
      dir = tempDir('vf-py-')
      node = await startTestNode(join(dir.path, 'node'))
      await node.registry.createTenant('care-py', 'Py')
      await node.registry.createTenant('care-other', 'Other')
      await node.registry.createPatient('care-py', 'py-p1')
      for (const category of ['vitals', 'spot_measurements'] as const) {
        await node.registry.recordConsent({ tenant: 'care-py', patient: 'py-p1', purpose: 'care', category, action: 'grant', recordedBy: 'nurse-1', source: 'paper_form', validFromMs: Date.now() - 86_400_000 })
      }
      dev = await node.registry.enrollDevice({ tenant: 'care-py', device: 'py-dev1', family: 'cvitals', patient: 'py-p1' })
      ca = join(dir.path, 'ca.crt')
      writeFileSync(ca, node.caPem!)
    }, 60_000)
    afterAll(async () => {
      await node?.close()
      dir?.remove()
    })

    // `--name=value`: a secret or key (base64url) may begin with '-', which argparse would take for an option
    const connect = (tenant: string, state: string, extra: string[] = []): string[] => [
      '--host', 'localhost', '--port', String(node.mqtts.port), '--ca', ca, '--tenant', tenant, '--device', 'py-dev1',
      `--secret=${dev.secret}`, `--key=${dev.key}`, '--key-id', String(dev.keyId), '--state', join(dir.path, state), ...extra,
    ]

    it.runIf(spawnSync('protoc', ['--version']).status === 0)('its message classes are what protoc generates from proto/', () => {
      const out = join(dir.path, 'pb')
      mkdirSync(out)
      const protos = readdirSync(PROTO).filter((f) => f.endsWith('.proto')).map((f) => join(PROTO, f))
      expect(spawnSync('protoc', ['-I', PROTO, `--python_out=${out}`, ...protos]).status).toBe(0)
      for (const f of readdirSync(out)) expect(readFileSync(join(out, f), 'utf8'), f).toBe(readFileSync(join(GENERATED, f), 'utf8'))
    })

    it('verifies the published test vectors with its own code', async () => {
      const r = await runDevice(['--verify-only'])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(r.lines.map((l) => l['ok'])).toEqual([true, true, true, true, true])
    }, 60_000)

    it('publishes every stream at QoS 1, each PUBACKed, and its rows are stored with their exact sequence numbers', async () => {
      const first = TOP - 3n
      const r = await runDevice(connect('care-py', 'ok.state.json', ['--seq', String(first)]))
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      const sent = r.lines.filter((l) => 'puback' in l)
      expect(sent.map((l) => [l['topic'], l['seq'], l['puback']])).toEqual(['vitals', 'spot', 'alarm', 'status'].map((s, i) =>
        [`v1/care-py/py-dev1/${s}`, String(first + BigInt(i)), true]))
      const seqOf = async (table: string): Promise<string[]> =>
        (await rowsOf<{ s: string }>(node, `SELECT DISTINCT toString(seq) AS s FROM {db}.${table} WHERE device_id = 'py-dev1' ORDER BY s`)).map((x) => x.s)
      expect(await seqOf('vital_samples')).toEqual([String(first)])
      expect(await count(node, 'vital_samples', "device_id = 'py-dev1'")).toBe(6) // 4 heart rate, 1 SpO2, battery
      expect(await seqOf('spot_measurements')).toEqual([String(first + 1n)])
      expect(await seqOf('alarm_events')).toEqual([String(first + 2n)])
      expect(await seqOf('device_status')).toEqual([String(TOP)])
      const spot = await rowsOf<{ systolic: number; patient_id: string }>(node, "SELECT systolic, patient_id FROM {db}.spot_measurements WHERE device_id = 'py-dev1'")
      expect(spot).toEqual([{ systolic: 131, patient_id: 'py-p1' }])
      expect(await count(node, 'rejected_messages', "device_id = 'py-dev1'")).toBe(0)
    }, 60_000)

    it('exits non-zero when a PUBACK is missing (publishing outside its own tenant gets it disconnected)', async () => {
      const r = await runDevice(connect('care-other', 'wrong.state.json', ['--streams', 'alarm', '--timeout', '3']))
      expect(r.code).toBe(1)
      expect(r.lines.filter((l) => 'puback' in l).map((l) => l['puback'])).toEqual([false])
      expect(await count(node, 'rejected_messages', "device_id = 'py-dev1' AND reason = 'ING_ERR_TENANT'")).toBeGreaterThan(0)
    }, 60_000)

    describe('over MQTT 5 (paho-mqtt, --mqtt5)', () => {
      let dev5: Enrollment
      const connect5 = (state: string, extra: string[] = []): string[] => [
        '--mqtt5', '--host', 'localhost', '--port', String(node.mqtts.port), '--ca', ca, '--tenant', 'care-py', '--device', 'py-dev5',
        `--secret=${dev5.secret}`, `--key=${dev5.key}`, '--key-id', String(dev5.keyId), '--state', join(dir.path, state), ...extra,
      ]
      beforeAll(async () => {
        dev5 = await node.registry.enrollDevice({ tenant: 'care-py', device: 'py-dev5', family: 'cvitals', patient: 'py-p1' })
      })

      it('every stream is PUBACKed with reason code 0x00 and its rows are read back from storage', async () => {
        const r = await runDevice(connect5('v5.state.json', ['--seq', '1000']))
        expect(r.stderr).toBe('')
        expect(r.code).toBe(0)
        expect(r.lines.filter((l) => 'puback' in l).map((l) => [l['seq'], l['puback'], l['reason_code']])).toEqual([['1000', true, 0], ['1001', true, 0], ['1002', true, 0], ['1003', true, 0]])
        expect(await count(node, 'vital_samples', "device_id = 'py-dev5' AND seq = 1000")).toBe(6)
        expect(await rowsOf(node, "SELECT systolic, toString(seq) AS seq FROM {db}.spot_measurements WHERE device_id = 'py-dev5'")).toEqual([{ systolic: 131, seq: '1001' }])
        expect(await count(node, 'alarm_events', "device_id = 'py-dev5' AND seq = 1002")).toBe(1)
        expect(await count(node, 'device_status', "device_id = 'py-dev5' AND seq = 1003")).toBe(1)
      }, 60_000)

      it('a frame that does not authenticate is 0x87 with its reason string, one that is no envelope 0x99; both dropped, nothing stored', async () => {
        const before = await count(node, 'spot_measurements', "device_id = 'py-dev5'")
        for (const [tamper, key] of [['decrypt', 'decrypt'], ['envelope', 'envelope']] as const) {
          const r = await runDevice(connect5(`${tamper}.state.json`, ['--seq', '2000', '--streams', 'spot', '--tamper', tamper]))
          expect(r.stderr).toBe('')
          expect(r.code, tamper).toBe(1)
          expect(r.lines.filter((l) => 'puback' in l).map((l) => [l['reason_code'], l['reason_string']]), tamper).toEqual([[DEVICE_ANSWERS[key].code, DEVICE_ANSWERS[key].text]])
          // refused for good: the device dropped it instead of keeping it to resend
          expect((JSON.parse(readFileSync(join(dir.path, `${tamper}.state.json`), 'utf8')) as { pending: unknown[] }).pending).toEqual([])
        }
        expect(await count(node, 'spot_measurements', "device_id = 'py-dev5'")).toBe(before)
        expect(await count(node, 'rejected_messages', "device_id = 'py-dev5' AND reason IN ('ING_ERR_DECRYPT', 'ING_ERR_ENVELOPE')")).toBe(2)
      }, 60_000)

      it('a wrong secret is refused with CONNACK 0x86', async () => {
        const r = await runDevice([...connect5('bad.state.json'), '--secret=wrong'])
        expect(r.code).toBe(3)
        expect(r.lines).toContainEqual({ connect: 'refused', rc: 0x86 })
      }, 60_000)
    })
  })
})
