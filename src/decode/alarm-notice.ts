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
}

/**
 * The notice as JSON (MQTT to responders, Server-Sent Events). seq is written
 * as a JSON number with every digit, also above 2^53 (JSON.stringify cannot
 * write a bigint); a reader that needs it exact there parses it as a big integer.
 */
export function alarmNoticeJson (a: AlarmNotice): string {
  const { seq, ...rest } = a
  return `{"seq":${seq.toString()},${JSON.stringify(rest).slice(1)}`
}
