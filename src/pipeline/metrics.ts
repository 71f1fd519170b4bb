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
  /**
   * Main-thread seconds per step of the hot path, from every STAGE_SAMPLE-th
   * message scaled up (two clock reads per step would cost more than some steps).
   */
  stageSeconds: Record<string, number>
}

/** One message in this many is timed step by step. */
export const STAGE_SAMPLE = 16

export function createMetrics (): IngestMetrics {
  return { accepted: {}, rejected: {}, rowsQueued: {}, rowsStored: {}, rowsFiltered: 0, unacknowledged: {}, flushes: 0, flushErrors: 0, securityEvents: 0, stageSeconds: {} }
}

export function bump (counter: Record<string, number>, key: string, by = 1): void {
  counter[key] = (counter[key] ?? 0) + by
}
