/** The real-time alarm path inside the node: alarms go to a tenant's listeners the moment they are durable, never behind telemetry batches. */
import type { AlarmNotice } from '../decode/index.ts'
export { alarmNoticeJson } from '../decode/index.ts'
export type { AlarmNotice } from '../decode/index.ts'

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
