/**
 * seq is a uint64 end to end: frames with seq 2^53 + 1, 2^64 - 2 and 2^64 - 1
 * are accepted over a real TLS connection, stored with every digit, refused
 * when resent, and the replay window rebuilt from storage after a restart is
 * exact at the top of the range (a stored 2^64 - 2 stays refused, a never-sent
 * 2^64 - 3 is still accepted once).
 */
import { randomBytes } from 'node:crypto'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { alarmNoticeJson, createAdminClient } from '../src/api/index.ts'
import { EnvelopeType } from '../src/decode/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { encodePayload } from '../devices/index.ts'
import { connectTls, count, enrollAndConnect, publishAcked, rowsOf, startTestNode, tempDir, windowSeen, type TestDevice } from './support/node.ts'

const TOP = 2n ** 64n - 1n
const ABOVE_DOUBLES = 2n ** 53n + 1n
const TOPIC = 'v1/care-q/cal-q1/alarm'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let d: TestDevice
let client: MqttClient
/**
 * A frame built without our sealer: associated data by hand, noble's XChaCha20-Poly1305, and the envelope by
 * protobufjs, which writes a 64-bit value exactly when handed {low, high}.
 */
function frame (seq: bigint, kind = 4): Uint8Array {
  const key = Buffer.from(d.enrollment.key, 'base64url')
  const ad = Buffer.concat([Buffer.from('vf1\0care-q\0cal-q1\0alarm\0', 'latin1'), Buffer.alloc(12)])
  ad.writeBigUInt64BE(seq, ad.length - 12)
  ad.writeUInt32BE(d.enrollment.keyId, ad.length - 4)
  const nonce = randomBytes(24)
  const ciphertext = xchacha20poly1305(key, nonce, ad).encrypt(encodePayload('alarm', { occurredAtMs: Date.now() - 1000, kind, batteryPercent: 80 }))
  const wide = { low: Number(seq & 0xffff_ffffn), high: Number(seq >> 32n) } as unknown as number
  return EnvelopeType.encode({ version: 1, deviceId: 'cal-q1', seq: wide, keyId: d.enrollment.keyId, nonce, ciphertext }).finish()
}
const rejected = (reason: string): Promise<number> => count(node, 'rejected_messages', "device_id = 'cal-q1' AND reason = {r:String}", { r: reason })
const storedSeqs = async (table: string): Promise<string[]> =>
  (await rowsOf<{ s: string }>(node, `SELECT toString(seq) AS s FROM {db}.${table} WHERE device_id = 'cal-q1' ORDER BY seq`)).map((r) => r.s)

beforeAll(async () => {
  dir = tempDir('vf-u64-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant('care-q', 'Q')
  d = await enrollAndConnect(node, 'care-q', 'cal-q1', 'calarm', null)
  client = d.client
}, 60_000)
afterAll(async () => {
  await client?.endAsync(true).catch(() => {})
  await node?.close()
  dir?.remove()
})

describe('sequence numbers over the whole uint64 range', () => {
  it('stores 2^53 + 1 and 2^64 - 1 exactly, refuses their resends, and keeps the window exact across a restart', async () => {
    const kept = { above: frame(ABOVE_DOUBLES, 1), top: frame(TOP), belowTop: frame(TOP - 1n) }
    const neverSent = frame(TOP - 2n)
    // a button press: its notice to responders carries the seq too
    expect(await publishAcked(client, TOPIC, kept.above)).toBe(true)
    expect(await publishAcked(client, TOPIC, kept.belowTop)).toBe(true)
    expect(await publishAcked(client, TOPIC, kept.top)).toBe(true)
    const expected = [ABOVE_DOUBLES, TOP - 1n, TOP].map(String)
    expect(await storedSeqs('alarm_events')).toEqual(expected)
    // the replay-window file holds the window below 2^64 - 1 exactly; 2^53 + 1 is far older than it (refused as too old)
    expect(await windowSeen(node, dir.path, 'cal-q1')).toEqual([TOP - 1n, TOP])

    // resends are acknowledged (MQTT 3.1.1 has no negative PUBACK) and refused
    expect(await publishAcked(client, TOPIC, kept.top)).toBe(true)
    expect(await publishAcked(client, TOPIC, kept.above)).toBe(true)
    expect(await rejected('ING_ERR_REPLAY')).toBe(2)
    expect(await rejected('ING_ERR_ENVELOPE')).toBe(0)

    await client.endAsync(true)
    await node.close()
    node = await startTestNode(dir.path)
    client = await connectTls(node, 'cal-q1', d.enrollment.secret)
    for (const f of [kept.top, kept.belowTop, neverSent, neverSent]) expect(await publishAcked(client, TOPIC, f)).toBe(true)
    expect(await storedSeqs('alarm_events')).toEqual([ABOVE_DOUBLES, TOP - 2n, TOP - 1n, TOP].map(String))
    expect(await rejected('ING_ERR_REPLAY')).toBe(2 + 3)
  }, 60_000)

  it('lists the button press at 2^53 + 1 in the alarm history and acknowledges it by its exact seq', async () => {
    const base = `http://127.0.0.1:${node.http.port}`
    await createAdminClient(base, node.adminToken).request('POST', '/admin/users', { tenant: 'care-q', user: 'care-q-resp', role: 'responder', password: 'correct horse battery staple' })
    const call = async (method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
      const r = await fetch(base + path, {
        method, body: body === undefined ? null : JSON.stringify(body),
        headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      })
      const text = await r.text()
      return { status: r.status, json: text === '' ? null : JSON.parse(text) }
    }
    const token = ((await call('POST', '/api/login', undefined, { tenant: 'care-q', user: 'care-q-resp', password: 'correct horse battery staple' })).json as { token: string }).token
    const listed = (await call('GET', '/api/alarms', token)).json as Array<Record<string, unknown>>
    expect(listed.map((a) => a['seq'])).toEqual([String(ABOVE_DOUBLES)])
    // 2^53 + 1 as a JSON number would arrive as 2^53: the seq goes as the decimal text the history gave
    expect((await call('POST', '/api/alarms/ack', token, { device: 'cal-q1', seq: String(ABOVE_DOUBLES - 1n) })).status).toBe(404)
    expect((await call('POST', '/api/alarms/ack', token, { device: 'cal-q1', seq: String(ABOVE_DOUBLES) })).status).toBe(204)
    expect((await call('POST', '/api/alarms/ack', token, { device: 'cal-q1', seq: String(2n ** 64n) })).status).toBe(400)
    const acked = (await call('GET', '/api/alarms', token)).json as Array<Record<string, unknown>>
    expect(acked[0]).toMatchObject({ seq: String(ABOVE_DOUBLES), acknowledgedBy: 'care-q-resp' })
  }, 60_000)

  it('writes the seq of an alarm notice as a JSON number with every digit', () => {
    const json = alarmNoticeJson({ tenant: 't', device: 'd', seq: TOP, patient: null, kind: 'fall_detected', occurredAtMs: 1, ingestedAtMs: 2, location: null })
    expect(json).toBe('{"seq":18446744073709551615,"tenant":"t","device":"d","patient":null,"kind":"fall_detected","occurredAtMs":1,"ingestedAtMs":2,"location":null}')
    expect(JSON.parse(json)).toMatchObject({ tenant: 't', kind: 'fall_detected' })
  })
})
