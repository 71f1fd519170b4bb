/**
 * The simulator as a user runs it: a demo fleet enrolled through the real
 * admin HTTP API, publishing over TLS at QoS 1, and its report read back from
 * ClickHouse. Loss must be 0 and every acknowledged message accounted for.
 */
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { ensureFleet, ensureFleetWithResponders } from '../simulators/fleet-store.ts'
import { runFleet, sentSince } from '../simulators/fleet.ts'
import { buildReport } from '../simulators/report.ts'
import { startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
/** /metrics has its own token here: the simulator must send it, not the admin token, to read the node's memory. */
const METRICS_TOKEN = 'simulator-test-metrics-token'

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path, { METRICS_TOKEN })
})
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('device-fleet simulator', () => {
  it('tells the alarms sent once every worker\'s devices were connected from those sent while some were still connecting', () => {
    const samples = { ack: [], queryable: [], alarm: [400, 30, 250, 12], alarmSentAt: [1_000, 5_000, 1_500, 9_000] }
    expect(sentSince(samples, 5_000)).toEqual([30, 12])
    expect(sentSince(samples, 0)).toEqual(samples.alarm)
    expect(sentSince(samples, 9_001)).toEqual([])
  })

  it('enrolls a mixed fleet through the admin API, publishes, and stores every acknowledged row', async () => {
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken, METRICS_TOKEN)
    const fleetFile = join(dir.path, 'sim', 'fleet.json')
    const { fleet, responders } = await ensureFleetWithResponders(api, fleetFile, { devices: 12, tenants: 2, log: () => {} })
    expect(new Set(fleet.map((d) => d.family))).toEqual(new Set(['bracelet', 'cvitals', 'calarm']))
    expect(fleet.some((d) => !d.consent)).toBe(true)
    // bracelets reach us through their patient's phone, enrolled as a gateway
    for (const d of fleet.filter((x) => x.family === 'bracelet')) expect(node.registry.device(d.device)!.gateway).toBe(d.gateway!.device)
    expect(responders.map((r) => r.tenant).sort()).toEqual(['demo-care-1', 'demo-care-2'])

    const since = Date.now()
    const rejectedBefore = { ...node.metrics.rejected }
    const result = await runFleet({
      host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, fleet, responders, api, seconds: 3, speed: 600, log: () => {},
      // rough weather: resends, gateways dropping out (6 per simulated hour), clocks two minutes off
      behaviour: { duplicateRate: 0.05, gatewayOutagePerHour: 6, gatewayOutageMinutes: 5, clockSkewMs: 120_000, inflightWindow: 4, rampSeconds: 0.5, alarmProbability: 0.5 },
    })
    const report = await buildReport(api, { fleet, result, since, rejectedBefore, speed: 600 })
    expect(result.connectFailures).toBe(0)
    expect(report.messages.offered).toBeGreaterThan(50)
    expect(report.messages.acked).toBe(report.messages.offered)
    for (const t of ['vital_samples', 'spot_measurements', 'alarm_events', 'device_status']) {
      expect(report.rows[t]!.stored, t).toBe(report.rows[t]!.expected)
      expect(report.rows[t]!.expected, t).toBeGreaterThan(0)
    }
    expect(report.loss).toBe(0)
    expect(report.duplicates.sent).toBeGreaterThan(0)
    expect(report.duplicates.storedTwice).toBe(0)
    // a duplicate is refused as a replay (and acknowledged); nothing else is refused
    expect(Object.keys(report.rejectedByNode).filter((r) => r !== 'ING_ERR_REPLAY')).toEqual([])
    expect(report.connections.gatewayOutages).toBeGreaterThan(0)
    expect(report.connections.backfilledMessages).toBeGreaterThan(0)
    expect(report.latencyMs.deviceToQueryable!.n).toBeGreaterThan(0)
    expect(report.latencyMs.deviceToQueryable!.p50).toBeGreaterThan(0)
    // presses and falls reach the tenant's responder identity over MQTT
    expect(report.latencyMs.alarmToResponder!.n).toBeGreaterThan(0)
    // and those sent once every device was connected are told apart (all of them here: the fleet connects first)
    const once = report.latencyMs.alarmToResponderOnceConnected!
    expect(result.samples.alarmSentAt.every((at) => at >= result.connectedAtMs)).toBe(true)
    expect(once.n).toBe(report.latencyMs.alarmToResponder!.n)
    expect(once.p99).toBe(report.latencyMs.alarmToResponder!.p99)
    // the node's memory, read from its /metrics while the fleet ran
    expect(report.nodeRssMB!.samples).toBeGreaterThanOrEqual(2)
    expect(report.nodeRssMB!.max).toBeGreaterThan(50)

    // a second run reuses the enrolled devices (their credentials were kept) and continues their sequence numbers
    const again = await ensureFleet(api, fleetFile, { devices: 12, tenants: 2, log: () => {} })
    expect(again.map((d) => d.device)).toEqual(fleet.map((d) => d.device))
    const second = await runFleet({ host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, fleet: again, seconds: 1, speed: 600, log: () => {} })
    expect(second.acked).toBe(second.sent)
    expect(Object.keys(node.metrics.rejected).filter((r) => r !== 'ING_ERR_REPLAY')).toEqual([])
  }, 60_000)

  it('with --mqtt5, the fleet speaks MQTT 5: every message answered, the refused ones with their reason code, no row lost', async () => {
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken, METRICS_TOKEN)
    const fleet = await ensureFleet(api, join(dir.path, 'sim', 'fleet-v5.json'), { devices: 12, tenants: 1, log: () => {} })
    const since = Date.now()
    const result = await runFleet({
      host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, fleet, api, seconds: 2, speed: 600, log: () => {}, protocolVersion: 5, seqBase: Date.now() * 1000,
      behaviour: { duplicateRate: 0, gatewayOutagePerHour: 6, gatewayOutageMinutes: 5, rampSeconds: 0.2 },
    })
    expect(result.mqtt).toBe('5')
    expect(result.connectFailures).toBe(0)
    const report = await buildReport(api, { fleet, result, since, rejectedBefore: {}, speed: 600 })
    expect(report.connections.mqtt).toBe('5')
    expect(report.messages.offered).toBeGreaterThan(20)
    expect(report.messages.acked).toBe(report.messages.offered)
    expect(report.loss).toBe(0)
    expect(report.rows['vital_samples']!.expected).toBeGreaterThan(0)
    // a patient without consent: their spot measurements are answered 0x87 "no consent"; nothing else is refused
    expect(Object.keys(report.pubackCodes).filter((c) => c !== '0x87')).toEqual([])
    if (fleet.some((d) => d.family === 'cvitals' && !d.consent)) expect(report.pubackCodes['0x87']).toBeGreaterThan(0)
  }, 60_000)

  it('with --mtls, every connecting identity gets a client certificate through the admin API and connects with it, no secret sent', async () => {
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    const fleetFile = join(dir.path, 'sim', 'fleet-mtls.json')
    const fleet = await ensureFleet(api, fleetFile, { devices: 8, tenants: 1, certificates: true, log: () => {} })
    for (const d of fleet) {
      const holder = d.gateway ?? d
      // a bracelet's certificate belongs to the phone that connects for it
      expect(new X509Certificate(holder.certificate!.certPem).subject).toBe(`O=${d.tenant}\nCN=${holder.device}`)
    }
    // a password-less fleet: any connection that fell back to the password listener would fail to authenticate
    const certOnly = fleet.map((d) => d.gateway === undefined ? { ...d, secret: 'not-the-secret' } : { ...d, gateway: { ...d.gateway, secret: 'not-the-secret' } })
    const since = Date.now()
    const result = await runFleet({
      host: '127.0.0.1', port: node.mqtts.port, mtlsPort: node.mqttsMutual!.port, ca: node.caPem, fleet: certOnly, api, seconds: 2, speed: 600, log: () => {},
      behaviour: { gatewayOutagePerHour: 6, gatewayOutageMinutes: 5, rampSeconds: 0.2 },
    })
    expect(result.transport).toBe('mutual-tls')
    expect(result.connected).toBe(8)
    expect(result.connectFailures).toBe(0)
    const report = await buildReport(api, { fleet, result, since, rejectedBefore: {}, speed: 600 })
    expect(report.messages.acked).toBe(report.messages.offered)
    expect(report.rows['vital_samples']!.expected).toBeGreaterThan(0)
    expect(report.loss).toBe(0)
    // the certificates were kept: a second run issues none
    const again = await ensureFleet(api, fleetFile, { devices: 8, tenants: 1, certificates: true, log: () => {} })
    expect(again.map((d) => (d.gateway ?? d).certificate!.certPem)).toEqual(fleet.map((d) => (d.gateway ?? d).certificate!.certPem))
  }, 60_000)
})
