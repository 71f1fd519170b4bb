/**
 * Enrolment rate through the admin API, side by side in one run on one node:
 * today's bulk path (one `devices:import` request for the whole file) and the
 * one-request-per-device path (`POST /admin/tenants/{t}/devices`), which is what
 * a rollout had before. Both through HTTP, both with keyed device secrets.
 * Usage: npx tsx bench/enrolment.bench.ts [bulkDevices=10000] [singleDevices=300]
 */
import { startNode } from '../src/pipeline/index.ts'
import { createAdminClient } from '../src/api/index.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const bulkCount = Number(process.argv[2] ?? 10_000)
const singleCount = Number(process.argv[3] ?? 300)
const dir = tempDir('vf-bench-')
const node = await startNode(testConfig(dir.path, { DEVICE_AUTH_COST: 14 }))
const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
await api.request('POST', '/admin/tenants', { tenant: 'bench', displayName: 'bench' })

let t = performance.now()
for (let i = 0; i < singleCount; i++) await api.request('POST', '/admin/tenants/bench/devices', { device: `cal-one${i}`, family: 'calarm' })
const singleSeconds = (performance.now() - t) / 1000

const file = ['device,family', ...Array.from({ length: bulkCount }, (_, i) => `brc-bulk${i},bracelet`)].join('\n')
t = performance.now()
const r = await api.upload<{ applied: boolean; enrolled: unknown[] }>('/admin/tenants/bench/devices:import', 'text/csv', file)
const bulkSeconds = (performance.now() - t) / 1000
if (r.status !== 200 || r.body.enrolled.length !== bulkCount) throw new Error(`import answered ${r.status}`)
t = performance.now()
const again = await api.upload<{ unchanged: unknown[] }>('/admin/tenants/bench/devices:import', 'text/csv', file)
const rerunSeconds = (performance.now() - t) / 1000
await node.storage.flush()
const stored = await (await node.storage.conn.client.query({ query: `SELECT count() AS n FROM ${node.storage.conn.table('devices')} FINAL WHERE tenant_id = 'bench'`, format: 'JSONEachRow' })).json<{ n: string }>()
await node.close()
dir.remove()

const round = (x: number): number => Math.round(x * 10) / 10
process.stdout.write(`${JSON.stringify({
  bench: 'enrolment',
  machine: machine(),
  bulk: { devices: bulkCount, seconds: round(bulkSeconds), perSec: Math.round(bulkCount / bulkSeconds) },
  bulkRerun: { unchanged: again.body.unchanged.length, seconds: round(rerunSeconds) },
  oneRequestPerDevice: { devices: singleCount, seconds: round(singleSeconds), perSec: round(singleCount / singleSeconds) },
  speedup: Math.round((bulkCount / bulkSeconds) / (singleCount / singleSeconds)),
  devicesStored: Number(stored[0]?.n ?? 0),
  expectedStored: bulkCount + singleCount,
}, null, 2)}\n`)
