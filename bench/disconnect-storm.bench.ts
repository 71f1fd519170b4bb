/**
 * A disconnect storm: N idle devices (cVitals kits, bulk connections) leave at once — their process is
 * killed, as when a care home's network drops — and the node closes N aedes clients. Measured: the
 * longest the node's event loop was held meanwhile (what an alarm arriving from a device still connected
 * would wait at most to be read), and how long until every client was closed. Side by side in the same
 * run: the read scheduler off (VF_READ_SLICE_MS=0) and on (20, the default), and two floors with the same
 * certificate and the same fleet: a bare Node TLS server that answers any CONNECT with a CONNACK and does
 * nothing else, and a bare aedes that takes any login. Ends are not scheduled (taking them like reads was
 * tried on 2026-12-03 and held the loop as long: bench/RESULTS.md).
 * Usage: npx tsx bench/disconnect-storm.bench.ts [devices=4000] [rounds=2]
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { createServer as createTlsServer } from 'node:tls'
import { Aedes } from 'aedes'
import { TLS_OPTIONS, loadTls } from '../src/broker/index.ts'
import { startNode } from '../src/pipeline/index.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const devices = Number(process.argv[2] ?? 4000)
const rounds = Number(process.argv[3] ?? 2)

/** Kills the fleet once its devices are in, and measures until `open()` counts none. */
async function killAndMeasure (child: ReturnType<typeof spawn>, connected: number, open: () => Promise<number>): Promise<{ closedMs: number; loopMaxMs: number; loopP99Ms: number }> {
  while (await open() < connected) await new Promise((resolve) => setTimeout(resolve, 50))
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
  return { closedMs: Math.round(closedMs), loopMaxMs: Math.round(loop.max / 1e5) / 10, loopP99Ms: Math.round(loop.percentile(99) / 1e5) / 10 }
}

function startFleet (port: number, ca: string, fleet: Array<{ device: string; secret: string }>): { child: ReturnType<typeof spawn>; ready: Promise<{ connected: number; failed: number }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/disconnect-storm-fleet.ts'], { stdio: ['pipe', 'pipe', 'inherit'] })
  child.stdin.end(JSON.stringify({ port, ca, concurrency: 64, devices: fleet }))
  const ready = (once(createInterface({ input: child.stdout }), 'line') as Promise<[string]>).then(([line]) => JSON.parse(line) as { connected: number; failed: number })
  return { child, ready }
}

/** The floors: Node's TLS server alone (a CONNACK to the first bytes, nothing else), or a bare aedes behind it. */
async function stormBare (kind: 'tls' | 'aedes'): Promise<Record<string, number>> {
  const dir = tempDir('vf-storm-bare-')
  const tls = loadTls({ dataDir: dir.path })
  const broker = await Aedes.createBroker({ authenticate: (_c, _u, _p, done) => done(null, true) })
  let openSockets = 0
  const server = createTlsServer({ ...TLS_OPTIONS, key: tls.key, cert: tls.cert }, (s) => {
    openSockets++
    s.on('close', () => { openSockets-- })
    s.on('error', () => {})
    if (kind === 'aedes') broker.handle(s)
    else s.once('data', () => { s.write(Buffer.from([0x20, 2, 0, 0])) })
  })
  try {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { child, ready } = startFleet((server.address() as { port: number }).port, tls.ca!.toString(), Array.from({ length: devices }, (_, i) => ({ device: `kit-${i}`, secret: 'x' })))
    const got = await ready
    return { ...got, ...await killAndMeasure(child, got.connected, async () => openSockets) }
  } finally {
    server.close()
    await new Promise<void>((resolve) => { broker.close(() => { resolve() }) })
    dir.remove()
  }
}

async function storm (sliceMs: number): Promise<Record<string, number>> {
  const dir = tempDir('vf-storm-')
  const node = await startNode(testConfig(dir.path, { READ_SLICE_MS: sliceMs, MAX_CONNECTIONS_PER_TENANT: 1_000_000 }))
  try {
    await node.registry.createTenant('bench', 'bench')
    const r = await node.registry.importDevices('bench', Array.from({ length: devices }, (_, i) => ({ line: i + 1, device: `kit-${i}`, family: 'cvitals' as const, patient: null, gateway: null })))
    const { child, ready } = startFleet(node.mqtts.port, node.caPem!, r.enrolled.map((e) => ({ device: e.device, secret: e.secret })))
    const got = await ready
    // the node's count of open MQTT clients, from its admin API
    const open = async (): Promise<number> => ((await (await fetch(`http://127.0.0.1:${node.http.port}/admin/stats`, { headers: { authorization: `Bearer ${node.adminToken}` } })).json()) as { connectedClients: number }).connectedClients
    const m = await killAndMeasure(child, got.connected, open)
    return { ...got, ...m }
  } finally {
    await node.close()
    dir.remove()
  }
}

const runs: Record<string, Array<Record<string, number>>> = { tls: [], aedes: [], off: [], on: [] }
for (let i = 0; i < rounds; i++) {
  // alternating, so drift of the machine falls on all
  runs['tls']!.push(await stormBare('tls'))
  runs['aedes']!.push(await stormBare('aedes'))
  runs['off']!.push(await storm(0))
  runs['on']!.push(await storm(20))
}
const worst = (xs: Array<Record<string, number>>, k: string): number => Math.max(...xs.map((x) => x[k]!))
console.log(JSON.stringify({
  bench: 'disconnect-storm', machine: machine(), devices, rounds,
  floors: {
    tls: { name: 'Node TLS server alone (CONNACK to the first bytes, nothing else)', runs: runs['tls'], loopMaxMs: worst(runs['tls']!, 'loopMaxMs') },
    aedes: { name: 'bare aedes behind the same TLS server, any login', runs: runs['aedes'], loopMaxMs: worst(runs['aedes']!, 'loopMaxMs') },
  },
  baseline: { name: 'read scheduler off (VF_READ_SLICE_MS=0)', runs: runs['off'], loopMaxMs: worst(runs['off']!, 'loopMaxMs') },
  sliced: { name: 'read scheduler on (VF_READ_SLICE_MS=20, the default)', runs: runs['on'], loopMaxMs: worst(runs['on']!, 'loopMaxMs') },
}, null, 2))
