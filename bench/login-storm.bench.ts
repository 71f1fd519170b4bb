/**
 * PUBACK latency of a legitimate device under a login storm: the device
 * publishes at QoS 1 over TLS (one message every 20 ms, each waiting for its
 * PUBACK), first with nothing else going on, then while attackers send
 * wrong-secret MQTT connects and wrong-password HTTP log-ins, each from a
 * rotating pool of loopback addresses (so the per-address back-off hardly
 * helps and only the hasher's global bound does). Same run, same node.
 * Usage: npx tsx bench/login-storm.bench.ts [seconds=10] [mqttAttackers=100] [httpAttackers=300]
 */
import { request } from 'node:http'
import { availableParallelism } from 'node:os'
import mqtt from 'mqtt'
import { startNode } from '../src/pipeline/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { connack, connectPacket, rawSocket } from '../test/support/raw-mqtt.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'
import { percentiles } from '../simulators/percentiles.ts'

const seconds = Number(process.argv[2] ?? 10)
const mqttAttackers = Number(process.argv[3] ?? 100)
const httpAttackers = Number(process.argv[4] ?? 300)
const dir = tempDir('vf-bench-')
// production hash cost; hash threads and queue at their defaults unless set in the environment
const node = await startNode(testConfig(dir.path, {
  DEVICE_AUTH_COST: 14, PUBLISH_RATE: 1000, PUBLISH_BURST: 10_000,
  ...(process.env['VF_HASH_THREADS'] === undefined ? {} : { HASH_THREADS: Number(process.env['VF_HASH_THREADS']) }),
  ...(process.env['VF_HASH_QUEUE'] === undefined ? {} : { HASH_QUEUE: Number(process.env['VF_HASH_QUEUE']) }),
}))
await node.registry.createTenant('bench', 'bench')
const e = await node.registry.enrollDevice({ tenant: 'bench', device: 'cal', family: 'calarm', patient: null })
const device = await mqtt.connectAsync({
  protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem, servername: 'localhost', clientId: 'cal', username: 'cal', password: e.secret, reconnectPeriod: 0,
})
const sealer = new DeviceSealer({ tenant: 'bench', device: 'cal', keyId: 1, key: Buffer.from(e.key, 'base64url') })
const model = createAlarmModel(3)

async function measurePubacks (ms: number): Promise<Record<string, number>> {
  const lat: number[] = []
  const end = performance.now() + ms
  while (performance.now() < end) {
    const { topic, frame } = sealer.seal('alarm', model.next(Date.now() - 100))
    const t = performance.now()
    await device.publishAsync(topic, Buffer.from(frame), { qos: 1 })
    lat.push(performance.now() - t)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const p = percentiles(lat, 2)
  return { pubacks: p.n, p50Ms: p.p50, p99Ms: p.p99, maxMs: p.max }
}

// a source address per attempt, from 127.1.0.0/16 (Linux answers all of 127/8 on loopback)
let nextAddress = 0
const address = (): string => { const n = nextAddress++ % 65_000; return `127.1.${Math.floor(n / 250)}.${(n % 250) + 1}` }

async function httpLogin (from: string): Promise<number> {
  const body = JSON.stringify({ tenant: 'bench', user: `nobody${nextAddress % 1000}`, password: 'wrong password' })
  return await new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: node.http.port, localAddress: from, method: 'POST', path: '/api/login', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', () => { resolve(0) })
    req.end(body)
  })
}

async function mqttLogin (from: string): Promise<number> {
  try {
    const s = await rawSocket(node.mqtt!.port, from)
    const code = await connack(s, connectPacket({ clientId: 'cal', username: 'cal', password: 'wrong secret' }))
    s.destroy()
    return typeof code === 'number' ? code : -1
  } catch { return -1 }
}

const baseline = await measurePubacks(seconds * 1000)

let storming = true
const outcomes: Record<string, number> = {}
const tally = (k: string): void => { outcomes[k] = (outcomes[k] ?? 0) + 1 }
const attackers = [
  ...Array.from({ length: mqttAttackers }, async () => { while (storming) tally(`mqtt:${await mqttLogin(address())}`) }),
  ...Array.from({ length: httpAttackers }, async () => { while (storming) tally(`http:${await httpLogin(address())}`) }),
]
const hashesBefore = node.hasher.stats().completed
const stormStart = performance.now()
const storm = await measurePubacks(seconds * 1000)
const stormSeconds = (performance.now() - stormStart) / 1000
storming = false
await Promise.all(attackers)
const stats = node.hasher.stats()

const result = {
  benchmark: 'login-storm',
  machine: { ...machine(), cores: availableParallelism() },
  config: { hashThreads: stats.threads, hashQueue: node.config.HASH_QUEUE, authCost: 14, mqttAttackers, httpAttackers, seconds },
  baseline,
  storm: {
    ...storm,
    loginAttemptsPerSec: Math.round(Object.values(outcomes).reduce((a, b) => a + b, 0) / stormSeconds),
    hashesPerSec: Math.round((stats.completed - hashesBefore) / stormSeconds),
    outcomes,
    hasher: { maxInFlight: stats.maxInFlight, refused: stats.refused, completed: stats.completed },
  },
}
process.stdout.write(JSON.stringify(result, null, 2) + '\n')
await device.endAsync(true)
await node.close()
dir.remove()
