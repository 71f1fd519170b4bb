/**
 * The simulator as a user runs it: a demo fleet enrolled through the real
 * admin HTTP API, publishing over TLS at QoS 1, and its report read back from
 * ClickHouse. Loss must be 0 and every acknowledged message accounted for.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { ensureFleet } from '../simulators/fleet-store.ts'
import { runFleet } from '../simulators/fleet.ts'
import { buildReport } from '../simulators/report.ts'
import { startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
})
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('device-fleet simulator', () => {
  it('enrolls a mixed fleet through the admin API, publishes, and stores every acknowledged row', async () => {
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    const fleetFile = join(dir.path, 'sim', 'fleet.json')
    const fleet = await ensureFleet(api, fleetFile, { devices: 12, tenants: 2, log: () => {} })
    expect(new Set(fleet.map((d) => d.family))).toEqual(new Set(['bracelet', 'cvitals', 'calarm']))
    expect(fleet.some((d) => !d.consent)).toBe(true)

    const since = Date.now()
    const result = await runFleet({ host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, fleet, seconds: 3, speed: 600, log: () => {} })
    const report = await buildReport(api, { fleet, result, since, rejectedBefore: {}, speed: 600 })
    expect(result.connectFailures).toBe(0)
    expect(report.messages.sent).toBeGreaterThan(50)
    expect(report.messages.acked).toBe(report.messages.sent)
    for (const t of ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status']) {
      expect(report.rows[t]!.stored, t).toBe(report.rows[t]!.expected)
      expect(report.rows[t]!.expected, t).toBeGreaterThan(0)
    }
    expect(report.loss).toBe(0)
    expect(report.rejectedByNode).toEqual({})

    // a second run reuses the enrolled devices (their credentials were kept) and continues their sequence numbers
    const again = await ensureFleet(api, fleetFile, { devices: 12, tenants: 2, log: () => {} })
    expect(again.map((d) => d.device)).toEqual(fleet.map((d) => d.device))
    const second = await runFleet({ host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, fleet: again, seconds: 1, speed: 600, log: () => {} })
    expect(second.acked).toBe(second.sent)
    expect(node.metrics.rejected).toEqual({})
  }, 60_000)
})
