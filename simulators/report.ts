/** The simulator's report: offered, acknowledged and stored, read back from ClickHouse through the admin API. */
import type { AdminClient } from '../src/api/index.ts'
import type { SimDevice } from './fleet-store.ts'
import type { DataTable, FleetResult } from './fleet.ts'

export interface SimReport {
  devices: Record<string, number>
  seconds: number
  speed: number
  messages: { offered: number; acked: number; failed: number; offeredPerSecond: number; ackedPerSecond: number }
  rows: Record<string, { expected: number; stored: number }>
  /** Rows stored per second of the run (samples, measurements, alarms, status). */
  storedRowsPerSecond: number
  /** Expected rows minus stored rows, over all tables: must be 0. */
  loss: number
  /** Resends of acknowledged messages (same sequence number): the node must store them once. */
  duplicates: { sent: number; storedTwice: number }
  rejectedByNode: Record<string, number>
  /** MQTT 5 only: PUBACK reason codes other than 0x00 the devices got, by code. */
  pubackCodes: Record<string, number>
  connections: {
    transport: FleetResult['transport']; mqtt: FleetResult['mqtt']; connected: number; connectSeconds: number
    failures: number; reconnects: number; gatewayOutages: number; backfilledMessages: number
  }
  latencyMs: { puback: FleetResult['ackLatencyMs']; deviceToQueryable: FleetResult['queryableLatencyMs']; alarmToResponder: FleetResult['alarmToResponderMs']; alarmToResponderOnceConnected: FleetResult['alarmToResponderConnectedMs'] }
  nodeRssMB: FleetResult['nodeRssMB']
  nodeCpu: FleetResult['nodeCpu']
  simEventLoopDelayMs: FleetResult['simEventLoopDelayMs']
  alarmSimEventLoopDelayMs: FleetResult['alarmSimEventLoopDelayMs']
}

const TABLES: DataTable[] = ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status']

export async function buildReport (api: AdminClient, input: {
  fleet: SimDevice[]; result: FleetResult; since: number; rejectedBefore: Record<string, number>; speed: number
}): Promise<SimReport> {
  const { fleet, result } = input
  const stored: Record<string, number> = {}
  for (const tenant of new Set(fleet.map((d) => d.tenant))) {
    const rows = await api.request<Record<string, number>>('GET', `/admin/tenants/${tenant}/rows?since=${input.since}`)
    for (const [t, n] of Object.entries(rows)) stored[t] = (stored[t] ?? 0) + n
  }
  const after = await api.request<{ rejected: Record<string, number> }>('GET', '/admin/stats')
  const rejected: Record<string, number> = {}
  for (const [reason, n] of Object.entries(after.rejected)) {
    const d = n - (input.rejectedBefore[reason] ?? 0)
    if (d !== 0) rejected[reason] = d
  }
  const rows: SimReport['rows'] = {}
  let loss = 0
  let total = 0
  for (const t of TABLES) {
    rows[t] = { expected: result.expected[t], stored: stored[t] ?? 0 }
    loss += Math.max(0, result.expected[t] - (stored[t] ?? 0))
    total += stored[t] ?? 0
  }
  const devices: Record<string, number> = {}
  for (const d of fleet) {
    devices[d.family] = (devices[d.family] ?? 0) + 1
    if (d.gateway !== undefined) devices['gateway'] = (devices['gateway'] ?? 0) + 1
  }
  const storedTwice = TABLES.reduce((n, t) => n + Math.max(0, (stored[t] ?? 0) - result.expected[t]), 0)
  return {
    devices,
    seconds: Math.round(result.elapsedSeconds * 10) / 10,
    speed: input.speed,
    messages: {
      offered: result.sent, acked: result.acked, failed: result.failed,
      offeredPerSecond: Math.round(result.sent / result.elapsedSeconds), ackedPerSecond: Math.round(result.acked / result.elapsedSeconds),
    },
    rows,
    storedRowsPerSecond: Math.round(total / result.elapsedSeconds),
    loss,
    duplicates: { sent: result.duplicatesSent, storedTwice },
    rejectedByNode: rejected,
    pubackCodes: result.pubackCodes,
    connections: {
      transport: result.transport, mqtt: result.mqtt, connected: result.connected, connectSeconds: result.connectSeconds,
      failures: result.connectFailures, reconnects: result.reconnects, gatewayOutages: result.gatewayOutages, backfilledMessages: result.backfilled,
    },
    latencyMs: { puback: result.ackLatencyMs, deviceToQueryable: result.queryableLatencyMs, alarmToResponder: result.alarmToResponderMs, alarmToResponderOnceConnected: result.alarmToResponderConnectedMs },
    nodeRssMB: result.nodeRssMB,
    nodeCpu: result.nodeCpu,
    simEventLoopDelayMs: result.simEventLoopDelayMs,
    alarmSimEventLoopDelayMs: result.alarmSimEventLoopDelayMs,
  }
}
