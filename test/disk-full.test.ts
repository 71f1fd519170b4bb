/**
 * A full disk, for real: the node's data directory on a small tmpfs that the
 * test fills. The node must stay up, stop acknowledging (devices keep their
 * messages), say so (/readyz, a metric, a log line) and resume by itself once
 * space returns, and every message it acknowledged is stored exactly once.
 * (A short write to the log used to throw out of the publish path and crash
 * the node, in a loop while the disk stayed full.)
 */
import { rmSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { startNode, type IngestNode } from '../src/pipeline/index.ts'
import { createAlarmModel } from '../devices/index.ts'
import { connectTls, enrollAndConnect, publishAcked, rowsOf, testConfig, type TestDevice } from './support/node.ts'
import { fillDisk, mountTmpfs, type Tmpfs } from './support/tmpfs.ts'

const fs = mountTmpfs(24 * 1024 * 1024)
const mounted = 'path' in fs ? fs : null
if (mounted === null) process.stderr.write(`skipped: disk-full tests: ${(fs as { unavailable: string }).unavailable}\n`)

const open: Array<{ node: IngestNode; d: TestDevice }> = []
afterAll(async () => {
  for (const o of open) {
    await o.d.client.endAsync(true).catch(() => {})
    await o.node.close().catch(() => {})
  }
  mounted?.unmount()
})

const free = (dir: string) => { const s = statfsSync(dir); return s.bavail * s.bsize }
const alarms = createAlarmModel(21)

async function until (what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!await check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function scenario (m: Tmpfs, name: string, reserveBytes: number, leaveBytes: number): Promise<void> {
  const dataDir = join(m.path, name)
  const logs: string[] = []
  const sink = new Writable({ write (chunk, _enc, cb) { logs.push(String(chunk)); cb() } })
  const node = await startNode(testConfig(dataDir, { LOG_LEVEL: 'info', DISK_RESERVE_BYTES: reserveBytes, PUBLISH_RATE: 10_000, PUBLISH_BURST: 100_000 }), pino({ level: 'info' }, sink))
  await node.registry.createTenant('care-f', 'F')
  const d = await enrollAndConnect(node, 'care-f', 'cal-f1', 'calarm', null)
  open.push({ node, d })
  const http = (path: string) => fetch(`http://127.0.0.1:${node.http.port}${path}`, { headers: { authorization: `Bearer ${node.adminToken}` } })

  const acked: number[] = []
  for (let i = 0; i < 20; i++) {
    const m = d.sealer.seal('alarm', alarms.next(Date.now() - 1000))
    expect(await publishAcked(d.client, m.topic, m.frame)).toBe(true)
    acked.push(m.seq)
  }
  await node.storage.flush()

  // the disk fills up (another process, a log, a core dump: the node did not do it)
  const filler = fillDisk(m.path, leaveBytes, () => free(m.path))
  let unacked: { topic: string; frame: Uint8Array; seq: number } | null = null
  for (let i = 0; i < 5000 && unacked === null; i++) {
    if (!d.client.connected) d.client = await connectTls(node, 'cal-f1', d.enrollment.secret)
    const msg = d.sealer.seal('alarm', alarms.next(Date.now() - 1000))
    if (await publishAcked(d.client, msg.topic, msg.frame)) acked.push(msg.seq)
    else unacked = msg
  }
  expect(unacked, 'the node went on acknowledging on a full disk').not.toBeNull()
  expect(node.metrics.unacknowledged, JSON.stringify(node.metrics.unacknowledged)).toHaveProperty('ING_ERR_DISK_FULL')
  // it says so: not ready, a metric with the reason, an error line
  const ready = await http('/readyz')
  expect(ready.status).toBe(503)
  expect(await (await http('/metrics')).text()).toContain('vitalflow_acknowledging{reason="ING_ERR_DISK_FULL"} 0')
  expect(logs.some((l) => l.includes('"level":50') && l.includes('ING_ERR_DISK_FULL'))).toBe(true)
  // still up and answering: a reconnect is accepted, its message still gets no PUBACK
  const c = await connectTls(node, 'cal-f1', d.enrollment.secret)
  d.client = c
  expect(await publishAcked(c, unacked!.topic, unacked!.frame)).toBe(false)

  // space returns: the node takes data again by itself
  rmSync(filler)
  await until('/readyz to turn 200', async () => (await http('/readyz')).status === 200)
  expect(logs.some((l) => l.includes('PUBACKs resume'))).toBe(true)
  if (!d.client.connected) d.client = await connectTls(node, 'cal-f1', d.enrollment.secret)
  // the device still has its message and resends it
  expect(await publishAcked(d.client, unacked!.topic, unacked!.frame)).toBe(true)
  acked.push(unacked!.seq)
  const more = d.sealer.seal('alarm', alarms.next(Date.now() - 1000))
  expect(await publishAcked(d.client, more.topic, more.frame)).toBe(true)
  acked.push(more.seq)

  const rows = await rowsOf<{ s: string; n: string }>(node, 'SELECT toString(seq) AS s, count() AS n FROM {db}.alarm_events WHERE device_id = {d:String} GROUP BY seq', { d: 'cal-f1' })
  const stored = new Map(rows.map((r) => [Number(r.s), Number(r.n)]))
  expect(acked.filter((s) => stored.get(s) !== 1)).toEqual([])
  expect(stored.size).toBe(acked.length)
  await d.client.endAsync(true)
  await node.close()
  open.pop()
}

describe.skipIf(mounted === null)('a full disk', () => {
  it('a write that fails for want of space is not acknowledged, does not crash the node, and the node resumes when space returns', async () => {
    await scenario(mounted!, 'failing-write', 0, 4096)
  }, 120_000)

  it('below the free-space reserve the node stops acknowledging before any write fails, and resumes above it', async () => {
    await scenario(mounted!, 'reserve', 2 * 1024 * 1024, 1024 * 1024)
  }, 120_000)
})
