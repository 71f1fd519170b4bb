/**
 * DEVICE_ANSWERS (src/reasons.ts) is the one table of what a device is told:
 * docs/device-protocol.md §9 is written from it, every reason the node can
 * refuse with has a row, and the MQTT 5 packets the broker writes carry its
 * codes and fixed texts and nothing else.
 */
import { readFileSync } from 'node:fs'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { PROTOCOL_PATH, deviceAnswersTable, withTable } from '../scripts/protocol-table.ts'
import { ackPacket, connackPacket } from '../src/broker/mqtt5.ts'
import { BrokerReason, CryptoReason, DEVICE_ANSWERS, DecodeReason, DurabilityReason, PUBLISH_ANSWER, Reason, durabilityAnswer, type DeviceAnswerKey } from '../src/reasons.ts'

const parse = (bytes: Buffer): Packet => {
  const parser = mqttPacket.parser({ protocolVersion: 5 })
  const out: Packet[] = []
  parser.on('packet', (p: Packet) => out.push(p))
  parser.parse(bytes)
  expect(out).toHaveLength(1)
  return out[0]!
}

describe('device answers', () => {
  it('docs/device-protocol.md §9 holds exactly the generated table (npm run protocol-table)', () => {
    const doc = readFileSync(PROTOCOL_PATH, 'utf8')
    expect(withTable(doc)).toBe(doc)
    expect(doc).toContain(deviceAnswersTable())
  })

  it('every reason the node refuses with has a row', () => {
    const answered = new Set(Object.values(DEVICE_ANSWERS).map((a) => a.reason))
    for (const r of [...Object.values(Reason), ...Object.values(DurabilityReason)]) expect(answered.has(r), r).toBe(true)
  })

  it('every refusal of the ingest path and every storage failure maps to its row', () => {
    for (const r of [...Object.values(CryptoReason), ...Object.values(DecodeReason), Reason.topic, Reason.tenant, Reason.device, BrokerReason.rate]) {
      const key = PUBLISH_ANSWER[r]
      expect(key, r).toBeDefined()
      expect(DEVICE_ANSWERS[key!].reason).toBe(r)
    }
    for (const code of Object.values(DurabilityReason)) expect(DEVICE_ANSWERS[durabilityAnswer(code)].reason).toBe(code)
    expect(durabilityAnswer(undefined)).toBe('storage')
  })

  it('PUBACK, PUBREC and CONNACK carry the row\'s code and its fixed text, or no text when the device asked for none', () => {
    for (const key of Object.keys(DEVICE_ANSWERS) as DeviceAnswerKey[]) {
      const a = DEVICE_ANSWERS[key]
      const text = a.text === '' ? {} : { properties: { reasonString: a.text } }
      if (a.v5 === 'CONNACK') {
        expect(parse(connackPacket(key)), key).toMatchObject({ cmd: 'connack', sessionPresent: false, reasonCode: a.code, ...text })
      } else if (a.v5.startsWith('PUBACK')) {
        expect(parse(ackPacket(1, 513, key, true)), key).toMatchObject({ cmd: 'puback', messageId: 513, reasonCode: a.code, ...text })
        expect(parse(ackPacket(2, 7, key, false))).toMatchObject({ cmd: 'pubrec', messageId: 7, reasonCode: a.code })
        expect((parse(ackPacket(1, 7, key, false)) as { properties?: unknown }).properties).toBeUndefined()
      }
    }
    expect(connackPacket('authHashBusy').subarray(0, 4).toString('hex')).toBe(`20${(3 + 3 + DEVICE_ANSWERS.authHashBusy.text.length).toString(16)}0089`)
  })

  it('reason strings are short fixed ASCII texts with no placeholder a value could be put in', () => {
    for (const [key, a] of Object.entries(DEVICE_ANSWERS)) {
      expect(a.text, key).toMatch(/^[ -~]{0,80}$/)
      expect(a.text, key).not.toMatch(/\$\{|%[sd]/)
    }
  })
})
