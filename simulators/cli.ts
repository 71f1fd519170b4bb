/**
 * `npm run sim -- --devices 300 --seconds 30`: a demo fleet against the
 * running node (same VF_* settings as `npm start`). Creates or reuses demo
 * tenants, patients and devices of all three families through the admin API,
 * publishes over TLS at QoS 1, then reads back from ClickHouse what was stored
 * and prints a report; loss must be 0.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { adminClientFor } from '../src/api/index.ts'
import { loadConfig } from '../src/config/index.ts'
import { ensureFleet } from './fleet-store.ts'
import { runFleet } from './fleet.ts'
import { buildReport } from './report.ts'

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '30' },
    tenants: { type: 'string', default: '2' },
    speed: { type: 'string', default: '60' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help === true) {
  process.stdout.write('usage: npm run sim -- [--devices 300] [--seconds 30] [--tenants 2] [--speed 60 (simulated s per real s)] [--json]\n')
  process.exit(0)
}
const num = (name: string, v: string, min: number, max: number): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) { process.stderr.write(`--${name} must be an integer in ${min}..${max}\n`); process.exit(2) }
  return n
}
const devices = num('devices', values.devices, 1, 100_000)
const seconds = num('seconds', values.seconds, 1, 86_400)
const tenants = num('tenants', values.tenants, 1, 1000)
const speed = num('speed', values.speed, 1, 100_000)
const log = (s: string): void => { if (!values.json) process.stderr.write(`sim: ${s}\n`) }

const config = loadConfig()
const api = adminClientFor(config)
try {
  const conn = await api.request<{ mqtts: number; caPem: string | null }>('GET', '/admin/connection')
  const before = await api.request<{ rejected: Record<string, number> }>('GET', '/admin/stats')
  const fleet = await ensureFleet(api, join(config.DATA_DIR, 'sim', 'fleet.json'), { devices, tenants, log })
  const since = Date.now()
  log(`publishing for ${seconds} s at ${speed}x simulated time over mqtts://127.0.0.1:${conn.mqtts}`)
  const result = await runFleet({ host: '127.0.0.1', port: conn.mqtts, ca: conn.caPem ?? undefined, fleet, seconds, speed, log })
  const report = await buildReport(api, { fleet, result, since, rejectedBefore: before.rejected, speed })
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  if (report.loss !== 0 || report.messages.acked === 0) process.exitCode = 1
} catch (err) {
  process.stderr.write(`sim: ${(err as Error).message}\n`)
  process.exit(1)
}
