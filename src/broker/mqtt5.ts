/**
 * What the node says to an MQTT 5 device that aedes does not say for it:
 * PUBACK/PUBREC and CONNACK with our reason codes and reason strings (aedes
 * 2.0.0-beta.1 answers every authorizePublish error with 0x87 and maps only
 * the 3.1.1 return codes 2–5 onto CONNACK), and the limits it does not
 * enforce (Receive Maximum, user properties). The codes and texts come from
 * DEVICE_ANSWERS (src/reasons.ts), never from a refusal's detail, so no
 * reason string carries a value from a message.
 */
import type { Client } from 'aedes'
import { DEVICE_ANSWERS, type DeviceAnswerKey } from '../reasons.ts'

/** What the node keeps of an MQTT 5 CONNECT for the life of its connection. */
export interface V5Session {
  /** Request Problem Information (default true): when false, no reason string on a PUBACK [MQTT-3.1.2-29]. */
  problemInformation: boolean
  /** QoS 1/2 publishes received and not yet answered (the node's Receive Maximum bounds it). */
  inflight: number
}

/** User properties a CONNECT or PUBLISH may carry: our devices need none, so a flood is refused cheaply. */
export const MAX_USER_PROPERTIES = 16
export const MAX_USER_PROPERTY_BYTES = 1024

type UserProperties = Record<string, string | string[]> | undefined

/** Whether `props` stays within the node's limits on user properties. */
export function userPropertiesWithin (props: UserProperties): boolean {
  if (props === undefined) return true
  let n = 0
  let bytes = 0
  for (const [k, v] of Object.entries(props)) {
    for (const value of Array.isArray(v) ? v : [v]) {
      n++
      bytes += Buffer.byteLength(k) + Buffer.byteLength(value)
      if (n > MAX_USER_PROPERTIES || bytes > MAX_USER_PROPERTY_BYTES) return false
    }
  }
  return true
}

function varint (n: number): number[] {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return out
}

/** A packet of type `header` with `variable` bytes and an optional Reason String property (0x1F). */
function withReason (header: number, variable: number[], text: string): Buffer {
  const reason = text === '' ? Buffer.alloc(0) : Buffer.from(text, 'utf8')
  const props = reason.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x1f, reason.length >> 8, reason.length & 0xff]), reason])
  const body = Buffer.concat([Buffer.from(variable), Buffer.from(varint(props.length)), props])
  return Buffer.concat([Buffer.from([header, ...varint(body.length)]), body])
}

/** PUBACK (QoS 1) or PUBREC (QoS 2) for `messageId` with the answer's code, and its text when the client allows it. */
export function ackPacket (qos: 1 | 2, messageId: number, key: DeviceAnswerKey, problemInformation: boolean): Buffer {
  const a = DEVICE_ANSWERS[key]
  return withReason(qos === 1 ? 0x40 : 0x50, [messageId >> 8, messageId & 0xff, a.code], problemInformation ? a.text : '')
}

/** A refusing CONNACK (session present 0) with the answer's code and text. */
export function connackPacket (key: DeviceAnswerKey): Buffer {
  const a = DEVICE_ANSWERS[key]
  return withReason(0x20, [0x00, a.code], a.text)
}

/** Whether the client is an MQTT 5 one whose CONNACK has gone out (it can be told why with a DISCONNECT). */
export function isConnectedV5 (client: Client | undefined): client is Client {
  return client !== undefined && client.version === 5 && client.connected && !client.closed
}

/**
 * Refuses an MQTT 5 CONNECT with our own CONNACK and closes, as aedes does
 * with its own: the CONNACK is written, the connection closed on the next
 * turn, and aedes' authenticate callback is never called (so it writes
 * nothing more).
 */
export function refuseConnect (client: Client, key: DeviceAnswerKey): void {
  client.conn.write(connackPacket(key))
  setImmediate(() => { client.close() })
}
