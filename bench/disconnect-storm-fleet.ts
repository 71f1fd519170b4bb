/**
 * The device side of bench/disconnect-storm.bench.ts, in a process of its own: connects the devices it
 * is given over TLS (password), says how many got in, and then waits to be killed, which closes all
 * of its connections at once.
 */
import mqtt, { type MqttClient } from 'mqtt'

interface Job { port: number; ca: string; devices: Array<{ device: string; secret: string }>; concurrency: number }
const job = JSON.parse(await new Promise<string>((resolve) => {
  let s = ''
  process.stdin.on('data', (d: Buffer) => { s += d.toString() })
  process.stdin.on('end', () => { resolve(s) })
})) as Job
const clients: MqttClient[] = []
let next = 0
let failed = 0
await Promise.all(Array.from({ length: job.concurrency }, async () => {
  while (next < job.devices.length) {
    const d = job.devices[next++]!
    try {
      clients.push(await mqtt.connectAsync({ protocol: 'mqtts', host: '127.0.0.1', port: job.port, ca: job.ca, servername: 'localhost', clientId: d.device, username: d.device, password: d.secret, reconnectPeriod: 0, keepalive: 600 }))
    } catch {
      failed++
    }
  }
}))
process.stdout.write(JSON.stringify({ connected: clients.length, failed }) + '\n')
setInterval(() => {}, 60_000)
