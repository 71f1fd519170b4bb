/**
 * A disconnect storm: N idle devices (cVitals kits, bulk connections) leave at once — their process is
 * killed, as when a care home's network drops — and the node closes N aedes clients. Measured: the
 * longest the node's event loop was held meanwhile (what an alarm arriving from a device still connected
 * would wait at most to be read), and how long until every client was closed. Side by side in the same
 * run: the read scheduler off (VF_READ_SLICE_MS=0) and on (20, the default). Ends are not scheduled
 * (taking them like reads was tried on 2026-12-03 and held the loop as long: bench/RESULTS.md).
 * Usage: npx tsx bench/disconnect-storm.bench.ts [devices=4000] [rounds=2]
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { startNode } from '../src/pipeline/index.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const devices = Number(process.argv[2] ?? 4000)
const rounds = Number(process.argv[3] ?? 2)

async function storm (sliceMs: number): Promise<Record<string, number>> {
  const dir = tempDir('vf-storm-')
  const node = await startNode(testConfig(dir.path, { READ_SLICE_MS: sliceMs, MAX_CONNECTIONS_PER_TENANT: 1_000_000 }))
  try {
    await node.registry.createTenant('bench', 'bench')
    const r = await node.registry.importDevices('bench', Array.from({ length: devices }, (_, i) => ({ line: i + 1, device: `kit-${i}`, family: 'cvitals' as const, patient: null, gateway: null })))
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/disconnect-storm-fleet.ts'], { stdio: ['pipe', 'pipe', 'inherit'] })
    child.stdin.end(JSON.stringify({ port: node.mqtts.port, ca: node.caPem, concurrency: 64, devices: r.enrolled.map((e) => ({ device: e.device, secret: e.secret })) }))
    const [line] = await once(createInterface({ input: child.stdout }), 'line') as [string]
    const got = JSON.parse(line) as { connected: number; failed: number }
    // the node's count of open MQTT clients, from its admin API
    const open = async (): Promise<number> => ((await (await fetch(`http://127.0.0.1:${node.http.port}/admin/stats`, { headers: { authorization: `Bearer ${node.adminToken}` } })).json()) as { connectedClients: number }).connectedClients
    while (await open() < got.connected) await new Promise((resolve) => setTimeout(resolve, 50))
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const loop = monitorEventLoopDelay({ resolution: 1 })
    loop.enable()
    await new Promise((resolve) => setTimeout(resolve, 200))
    loop.reset()
    const killedAt = performance.now()
    child.kill('SIGKILL')
    while (await open() > 0) await new Promise((resolve) => setTimeout(resolve, 5))
    const closedMs = performance.now() - killedAt
    // the monitor's timer fires once more after the last close, so a block at its very end is counted
    await new Promise((resolve) => setTimeout(resolve, 20))
    loop.disable()
    return { connected: got.connected, failed: got.failed, closedMs: Math.round(closedMs), loopMaxMs: Math.round(loop.max / 1e5) / 10, loopP99Ms: Math.round(loop.percentile(99) / 1e5) / 10 }
  } finally {
    await node.close()
    dir.remove()
  }
}

const runs: Record<string, Array<Record<string, number>>> = { off: [], on: [] }
for (let i = 0; i < rounds; i++) {
  // alternating, so drift of the machine falls on both
  runs['off']!.push(await storm(0))
  runs['on']!.push(await storm(20))
}
const worst = (xs: Array<Record<string, number>>, k: string): number => Math.max(...xs.map((x) => x[k]!))
console.log(JSON.stringify({
  bench: 'disconnect-storm', machine: machine(), devices, rounds,
  baseline: { name: 'read scheduler off (VF_READ_SLICE_MS=0)', runs: runs['off'], loopMaxMs: worst(runs['off']!, 'loopMaxMs') },
  sliced: { name: 'read scheduler on (VF_READ_SLICE_MS=20, the default)', runs: runs['on'], loopMaxMs: worst(runs['on']!, 'loopMaxMs') },
}, null, 2))
