/** The real-time alarm path inside the node: alarms go to a tenant's listeners the moment they are durable, never behind telemetry batches. */
export interface AlarmNotice {
  tenant: string
  device: string
  /** uint64, exact; alarmNoticeJson writes it as a JSON number with all its digits. */
  seq: bigint
  patient: string | null
  kind: 'button_press' | 'fall_detected'
  occurredAtMs: number
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

export class AlarmHub {
  private readonly listeners = new Map<string, Set<(a: AlarmNotice) => void>>()

  subscribe (tenant: string, listener: (a: AlarmNotice) => void): () => void {
    let set = this.listeners.get(tenant)
    if (set === undefined) { set = new Set(); this.listeners.set(tenant, set) }
    set.add(listener)
    return () => { set.delete(listener) }
  }

  publish (a: AlarmNotice): void {
    for (const l of this.listeners.get(a.tenant) ?? []) l(a)
  }
}
