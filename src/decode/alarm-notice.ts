/** What a responder is told of a button press or fall, the moment it is durable: built by the pipeline, sent by the API and the broker. */
export interface AlarmNotice {
  tenant: string
  device: string
  /** uint64, exact; alarmNoticeJson writes it as a JSON number with all its digits. */
  seq: bigint
  patient: string | null
  kind: 'button_press' | 'fall_detected'
  occurredAtMs: number
  /** When the node took it in (the row's ingested_at): the alarm stream's event id, from which a reconnecting reader resumes. */
  ingestedAtMs: number
  location: { latitude: number; longitude: number; accuracyM: number } | null
  /**
   * When the alarm stops being current (node clock): taken in plus the MQTT 5 Message Expiry
   * Interval the device gave it. Absent when it gave none (every MQTT 3.1.1 device), and then the
   * JSON is as it always was. A notice past it is still relayed and shown, marked stale: an alarm
   * is never dropped for being late.
   */
  expiresAtMs?: number
}

/**
 * The notice as JSON (MQTT to responders, Server-Sent Events). seq is written
 * as a JSON number with every digit, also above 2^53 (JSON.stringify cannot
 * write a bigint); a reader that needs it exact there parses it as a big integer.
 */
export function alarmNoticeJson (a: AlarmNotice, nowMs = Date.now()): string {
  const { seq, ...rest } = a
  const json = `{"seq":${seq.toString()},${JSON.stringify(rest).slice(1)}`
  // `stale` says whether the expiry had passed when this copy was written (a relay, an SSE event or replay)
  return a.expiresAtMs === undefined ? json : `${json.slice(0, -1)},"stale":${nowMs > a.expiresAtMs}}`
}

const NOT_STALE = Buffer.from(',"stale":false}')

/**
 * A notice's JSON as it is at `nowMs`: `stale` turned true once its expiry has passed. For an MQTT
 * delivery that goes out later than the relay (a responder's session queue); a notice without an
 * expiry, or already stale, comes back as it was.
 */
export function restaleNotice (json: Buffer, nowMs = Date.now()): Buffer {
  if (json.length < NOT_STALE.length || !json.subarray(json.length - NOT_STALE.length).equals(NOT_STALE)) return json
  const expires = /"expiresAtMs":(\d+)/.exec(json.toString('utf8'))
  if (expires === null || nowMs <= Number(expires[1])) return json
  return Buffer.concat([json.subarray(0, json.length - 'false}'.length), Buffer.from('true}')])
}
