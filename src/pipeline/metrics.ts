/** Counters of the ingest path. Plain numbers: reading them costs nothing on the hot path. */
export interface IngestMetrics {
  accepted: Record<string, number>
  rejected: Record<string, number>
  rowsQueued: Record<string, number>
  rowsStored: Record<string, number>
  rowsFiltered: number
  /** Accepted messages that could not be made durable (no PUBACK), by code. */
  unacknowledged: Record<string, number>
  flushes: number
  flushErrors: number
  securityEvents: number
}

export function createMetrics (): IngestMetrics {
  return { accepted: {}, rejected: {}, rowsQueued: {}, rowsStored: {}, rowsFiltered: 0, unacknowledged: {}, flushes: 0, flushErrors: 0, securityEvents: 0 }
}

export function bump (counter: Record<string, number>, key: string, by = 1): void {
  counter[key] = (counter[key] ?? 0) + by
}
