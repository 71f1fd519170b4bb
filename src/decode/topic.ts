/** Parses v1/{tenant}/{device}/{stream} without allocating more than the three ids. */
import { ID_PATTERN, type DeviceId, type TenantId } from '../ids.ts'
import { STREAMS, type Stream } from './messages.ts'

export interface TelemetryTopic { tenant: TenantId; device: DeviceId; stream: Stream }

const STREAM_SET: ReadonlySet<string> = new Set(STREAMS)

export function parseTopic (topic: string): TelemetryTopic | null {
  if (topic.length > 200 || !topic.startsWith('v1/')) return null
  const a = 3
  const b = topic.indexOf('/', a)
  if (b < 0) return null
  const c = topic.indexOf('/', b + 1)
  if (c < 0 || topic.indexOf('/', c + 1) >= 0) return null
  const tenant = topic.slice(a, b)
  const device = topic.slice(b + 1, c)
  const stream = topic.slice(c + 1)
  if (!STREAM_SET.has(stream) || !ID_PATTERN.test(tenant) || !ID_PATTERN.test(device)) return null
  return { tenant: tenant as TenantId, device: device as DeviceId, stream: stream as Stream }
}

export function telemetryTopic (tenant: string, device: string, stream: Stream): string {
  return `v1/${tenant}/${device}/${stream}`
}
