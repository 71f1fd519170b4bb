/**
 * kill -9 of the ingest process while 200 devices publish at QoS 1, then a
 * restart on the same data directory, then a graceful stop under load: every
 * message a device got a PUBACK for is in ClickHouse exactly once, checked by
 * (device, sequence number) against the publishers' own records. The node runs
 * as a child process (`node --import tsx src/main.ts`: the main that `npm start`
 * runs compiled, from source; test/signals.test.ts runs the real `npm start`).
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { createClient } from '@clickhouse/client'
import { createAdminClient } from '../src/api/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { startChildNode } from './support/child-node.ts'
import { publishAcked, tempDir } from './support/node.ts'

const dir = tempDir('vf-crash-')
const TOKEN = 'crash-test-admin-token-0123456789'
let child: ChildProcess | null = null

interface Ports { mqtts: number; http: number }

async function startChild (): Promise<Ports> {
  const started = await startChildNode(dir.path, TOKEN)
  child = started.proc
  return started
}

interface Publisher { client: MqttClient; sealer: DeviceSealer; acked: number[]; stop: boolean; done: Promise<void> }

async function startPublishers (ports: Ports, ca: string, fleet: Enrollment[], seqBase: number): Promise<Publisher[]> {
  const alarms = createAlarmModel(8)
  return await Promise.all(fleet.map(async (e) => {
    const client = await mqtt.connectAsync({
      protocol: 'mqtts', host: '127.0.0.1', port: ports.mqtts, ca, servername: 'localhost', clientId: e.device, username: e.device, password: e.secret,
      reconnectPeriod: 0, connectTimeout: 10_000,
    })
    client.on('error', () => {})
    const p: Publisher = { client, sealer: new DeviceSealer({ tenant: e.tenant, device: e.device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') }, seqBase), acked: [], stop: false, done: Promise.resolve() }
    p.done = (async () => {
      while (!p.stop && client.connected) {
        const { topic, frame, seq } = p.sealer.seal('alarm', alarms.next(Date.now() - 1000))
        if (await publishAcked(client, topic, frame)) p.acked.push(seq)
      }
    })()
    return p
  }))
}

async function storedCounts (): Promise<Map<string, number>> {
  // the node is stopped: open its chDB files in this process and read what is there
  const { createChdbConnection } = await import('chdb/connection')
  const connection = createChdbConnection({ path: join(dir.path, 'chdb') }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection']
  const client = createClient({ connection })
  const rs = await client.query({ query: 'SELECT device_id, toString(seq) AS s, count() AS n FROM vitalflow.alarm_events GROUP BY device_id, seq', format: 'JSONEachRow' })
  const out = new Map<string, number>()
  for (const r of await rs.json<{ device_id: string; s: string; n: string | number }>()) out.set(`${r.device_id}/${r.s}`, Number(r.n))
  await client.close()
  return out
}

afterAll(() => {
  child?.kill('SIGKILL')
  dir.remove()
})

describe('crash and restart', () => {
  it('after kill -9 and a restart, every acknowledged message is stored exactly once; a graceful stop under load loses nothing', async () => {
    let ports = await startChild()
    const api = createAdminClient(`http://127.0.0.1:${ports.http}`, TOKEN)
    const conn = await api.request<{ caPem: string }>('GET', '/admin/connection')
    await api.request('POST', '/admin/tenants', { tenant: 'care-k', displayName: 'K' })
    const fleet: Enrollment[] = []
    for (let i = 0; i < 200; i++) fleet.push(await api.request<Enrollment>('POST', '/admin/tenants/care-k/devices', { device: `cal-k${i}`, family: 'calarm' }))

    // phase 1: publish, then kill -9 mid-stream
    let pubs = await startPublishers(ports, conn.caPem, fleet, 1)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    child!.kill('SIGKILL')
    await once(child!, 'exit')
    for (const p of pubs) p.stop = true
    await Promise.all(pubs.map((p) => p.done))
    const acked1 = pubs.flatMap((p, i) => p.acked.map((s) => `cal-k${i}/${s}`))
    expect(acked1.length).toBeGreaterThan(500)
    await Promise.all(pubs.map((p) => p.client.endAsync(true).catch(() => {})))

    // phase 2: restart (the log is replayed), publish again, then a graceful stop under load
    ports = await startChild()
    pubs = await startPublishers(ports, conn.caPem, fleet, 1_000_000)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const stopping = Date.now()
    child!.kill('SIGTERM')
    const [code] = await once(child!, 'exit') as [number | null]
    const stopMs = Date.now() - stopping
    for (const p of pubs) p.stop = true
    await Promise.all(pubs.map((p) => p.done))
    const acked2 = pubs.flatMap((p, i) => p.acked.map((s) => `cal-k${i}/${s}`))
    expect(acked2.length).toBeGreaterThan(500)
    await Promise.all(pubs.map((p) => p.client.endAsync(true).catch(() => {})))
    // it stopped by itself, cleanly (the shipping deadline is VF_SHUTDOWN_TIMEOUT_MS; the figure is printed, not asserted)
    expect(code).toBe(0)
    process.stderr.write(`graceful stop under load took ${stopMs} ms\n`)

    const stored = await storedCounts()
    const missing = [...acked1, ...acked2].filter((k) => stored.get(k) !== 1)
    expect(missing).toEqual([])
    expect([...stored.values()].filter((n) => n !== 1)).toEqual([])
  }, 180_000)
})
