/**
 * A node's disk gone for good, with VF_ACK_AFTER=store: kill -9 of the ingest process while 120
 * devices publish alarms (the priority lane) and spot measurements (the bulk lane) at QoS 1, its
 * write-ahead log directories deleted, a restart, more load, and the same once more. Every message a
 * device got a PUBACK for is in ClickHouse exactly once, read back row by row from the stopped store
 * and checked by (device, sequence number) against the publishers' own records.
 *
 * Embedded chDB keeps its parts on the same disk as the log (DATA_DIR), so a lost disk would take the
 * store with it; here only the log directories (`wal/`, `wal-priority/`) are removed, which is what a
 * node of a cluster loses with its disk when the store is a ClickHouse server elsewhere. With the
 * default (`log`) the acknowledged rows still in the deleted log are gone, and this test fails.
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { createClient } from '@clickhouse/client'
import { createAdminClient } from '../src/api/index.ts'
import { createAlarmModel, createSpotModel, DeviceSealer } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { startChildNode, type ChildNode } from './support/child-node.ts'
import { publishAcked, tempDir } from './support/node.ts'

const dir = tempDir('vf-ack-crash-')
const TOKEN = 'ack-crash-test-admin-token-0123456789'
const T = 'care-q'
let child: ChildProcess | null = null

async function startChild (): Promise<ChildNode> {
  const started = await startChildNode(dir.path, TOKEN, { VF_ACK_AFTER: 'store' })
  child = started.proc
  return started
}

/** kill -9, then the log's disk is gone: its directories are deleted before the next start. */
async function killAndLoseLog (): Promise<void> {
  child!.kill('SIGKILL')
  await once(child!, 'exit')
  for (const lane of ['wal', 'wal-priority']) rmSync(join(dir.path, lane), { recursive: true, force: true })
}

interface Publisher { client: MqttClient; acked: string[]; stop: boolean; done: Promise<void> }

async function startPublishers (node: ChildNode, ca: string, fleet: Enrollment[], seqBase: number): Promise<Publisher[]> {
  return await Promise.all(fleet.map(async (e, i) => {
    const client = await mqtt.connectAsync({
      protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts, ca, servername: 'localhost', clientId: e.device, username: e.device, password: e.secret,
      reconnectPeriod: 0, connectTimeout: 10_000,
    })
    client.on('error', () => {})
    const sealer = new DeviceSealer({ tenant: e.tenant, device: e.device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') }, seqBase)
    const alarms = createAlarmModel(100 + i)
    const spots = createSpotModel(200 + i)
    const p: Publisher = { client, acked: [], stop: false, done: Promise.resolve() }
    p.done = (async () => {
      while (!p.stop && client.connected) {
        const m = e.family === 'calarm' ? sealer.seal('alarm', alarms.next(Date.now() - 1000)) : sealer.seal('spot', spots.next(Date.now() - 60_000))
        if (await publishAcked(client, m.topic, m.frame)) p.acked.push(`${e.device}/${m.seq}`)
      }
    })()
    return p
  }))
}

async function run (node: ChildNode, ca: string, fleet: Enrollment[], seqBase: number, ms: number): Promise<string[]> {
  const pubs = await startPublishers(node, ca, fleet, seqBase)
  await new Promise((resolve) => setTimeout(resolve, ms))
  await killAndLoseLog()
  for (const p of pubs) p.stop = true
  await Promise.all(pubs.map((p) => p.done))
  await Promise.all(pubs.map((p) => p.client.endAsync(true).catch(() => {})))
  return pubs.flatMap((p) => p.acked)
}

/** The stopped store, opened in this process: how often each (device, seq) is there, per table. */
async function stored (): Promise<Map<string, number>> {
  const { createChdbConnection } = await import('chdb/connection')
  const connection = createChdbConnection({ path: join(dir.path, 'chdb') }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection']
  const client = createClient({ connection })
  const out = new Map<string, number>()
  for (const table of ['alarm_events', 'spot_measurements']) {
    const rs = await client.query({ query: `SELECT device_id, toString(seq) AS s, count() AS n FROM vitalflow.${table} GROUP BY device_id, seq`, format: 'JSONEachRow' })
    for (const r of await rs.json<{ device_id: string; s: string; n: string | number }>()) out.set(`${r.device_id}/${r.s}`, (out.get(`${r.device_id}/${r.s}`) ?? 0) + Number(r.n))
  }
  await client.close()
  return out
}

afterAll(() => {
  child?.kill('SIGKILL')
  dir.remove()
})

describe('VF_ACK_AFTER=store: a node\'s log lost for good', () => {
  it('after kill -9 and the write-ahead log deleted, twice, every acknowledged message is stored exactly once', async () => {
    let node = await startChild()
    const api = createAdminClient(`http://127.0.0.1:${node.http}`, TOKEN)
    const { caPem } = await api.request<{ caPem: string }>('GET', '/admin/connection')
    await api.request('POST', '/admin/tenants', { tenant: T, displayName: 'Q' })
    await api.request('POST', `/admin/tenants/${T}/patients`, { patient: 'p-q' })
    await api.request('POST', `/admin/tenants/${T}/patients/p-q/consent`, { category: 'spot_measurements', action: 'grant', source: 'paper_form', validFromMs: Date.now() - 3_600_000 })
    const fleet: Enrollment[] = []
    for (let i = 0; i < 60; i++) fleet.push(await api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: `cal-q${i}`, family: 'calarm' }))
    for (let i = 0; i < 60; i++) fleet.push(await api.request<Enrollment>('POST', `/admin/tenants/${T}/devices`, { device: `cvk-q${i}`, family: 'cvitals', patient: 'p-q' }))

    const acked1 = await run(node, caPem, fleet, 1, 2500)
    // a new log starts its sequence numbers from 1 again; its batches must not pass for the old log's
    node = await startChild()
    const acked2 = await run(node, caPem, fleet, 1_000_000, 2500)

    for (const acked of [acked1, acked2]) {
      expect(acked.filter((k) => k.startsWith('cal-')).length).toBeGreaterThan(50)
      expect(acked.filter((k) => k.startsWith('cvk-')).length).toBeGreaterThan(50)
    }
    const rows = await stored()
    const notOnce = [...acked1, ...acked2].filter((k) => rows.get(k) !== 1)
    expect(notOnce).toEqual([])
    // nothing is stored twice, acknowledged or not
    expect([...rows].filter(([, n]) => n !== 1)).toEqual([])
  }, 180_000)
})
