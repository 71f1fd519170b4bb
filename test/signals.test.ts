/**
 * Stopping by signal, the node started as it is for real. SIGTERM to the pid of
 * `npm start` (what `kill <pid>` or a supervisor sends) and SIGINT to its process
 * group (a terminal's Ctrl-C) drain the node — it stops accepting, ships its log,
 * logs 'stopped', exits 0 — and leave no process and no listener behind. SIGTERM
 * to `node dist/main.js` itself, the Docker image's PID 1 (what `docker stop`
 * sends), does the same. `npm start` compiles src/ to dist/ first (prestart).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAdminClient } from '../src/api/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { publishAcked, tempDir } from './support/node.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const TOKEN = 'signals-test-admin-token-0123456789'

interface LogLine { msg?: string; pid?: number; signal?: string; mqtts?: string; http?: string }

interface Started {
  proc: ChildProcess
  /** resolves with the first log line carrying this message (rejects after timeoutMs) */
  logged: (msg: string, timeoutMs: number) => Promise<LogLine>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const running: Array<{ started: Started; dir: ReturnType<typeof tempDir> }> = []

function start (command: string, args: string[]): Started {
  const dir = tempDir('vf-signals-')
  const proc = spawn(command, args, {
    cwd: root,
    detached: true, // its own process group, as a terminal's foreground job is
    env: {
      ...process.env, VF_DATA_DIR: dir.path, VF_MQTT_PORT: '0', VF_MQTTS_PORT: '0', VF_MQTTS_MTLS_PORT: '0', VF_MQTTS_HOST: '127.0.0.1',
      VF_HTTP_PORT: '0', VF_ADMIN_TOKEN: TOKEN, VF_DEVICE_AUTH_COST: '10', VF_LOG_LEVEL: 'info', VF_SHUTDOWN_TIMEOUT_MS: '5000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(proc, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  const lines: LogLine[] = []
  const waiting = new Set<() => void>()
  createInterface({ input: proc.stdout }).on('line', (text) => {
    if (!text.startsWith('{')) return // npm's "> vitalflow@… start" banner
    lines.push(JSON.parse(text) as LogLine)
    for (const wake of waiting) wake()
  })
  const logged = async (msg: string, timeoutMs: number): Promise<LogLine> => await new Promise((resolve, reject) => {
    const check = (): void => {
      const line = lines.find((l) => l.msg === msg)
      if (line === undefined) return
      waiting.delete(check)
      clearTimeout(timer)
      resolve(line)
    }
    const timer = setTimeout(() => {
      waiting.delete(check)
      reject(new Error(`no '${msg}' in the log within ${timeoutMs} ms; it said: ${JSON.stringify(lines.map((l) => l.msg))}`))
    }, timeoutMs)
    waiting.add(check)
    check()
  })
  const started = { proc, logged, exited }
  running.push({ started, dir })
  return started
}

afterEach(() => {
  // whatever a failed test left running (an orphaned node keeps its group id)
  for (const { started, dir } of running.splice(0)) {
    try { process.kill(-started.proc.pid!, 'SIGKILL') } catch { /* the group has exited already */ }
    started.proc.stdout?.destroy()
    dir.remove()
  }
})

const portOf = (url: string | undefined): number => Number(url!.split(':').at(-1)!.split(' ')[0])

/** The error code of a TCP connect to 127.0.0.1:port ('connected' if something listens). */
async function connectResult (port: number): Promise<string> {
  const s = connect(port, '127.0.0.1')
  return await new Promise((resolve) => {
    s.once('connect', () => { s.destroy(); resolve('connected') })
    s.once('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? e.message) })
  })
}

/** Resolves once no process of the group is left; rejects after timeoutMs with what is left. */
async function groupGone (pgid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      process.kill(-pgid, 0)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return
      throw e
    }
    if (Date.now() > deadline) {
      const ps = await promisify(execFile)('ps', ['-o', 'pid,ppid,pgid,args', '-g', String(pgid)]).then((r) => r.stdout, (e: unknown) => (e as Error).message)
      throw new Error(`processes of group ${pgid} still running ${timeoutMs} ms after the signal:\n${ps}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** A device that has published QoS 1 messages and got PUBACKs, still connected. */
async function connectedDevice (http: number, mqtts: number): Promise<mqtt.MqttClient> {
  const api = createAdminClient(`http://127.0.0.1:${http}`, TOKEN)
  const { caPem } = await api.request<{ caPem: string }>('GET', '/admin/connection')
  await api.request('POST', '/admin/tenants', { tenant: 'care-s', displayName: 'S' })
  const e = await api.request<Enrollment>('POST', '/admin/tenants/care-s/devices', { device: 'cal-s1', family: 'calarm' })
  const client = await mqtt.connectAsync({
    protocol: 'mqtts', host: '127.0.0.1', port: mqtts, ca: caPem, servername: 'localhost', clientId: e.device, username: e.device, password: e.secret,
    reconnectPeriod: 0, connectTimeout: 10_000,
  })
  client.on('error', () => {})
  const sealer = new DeviceSealer({ tenant: e.tenant, device: e.device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') }, 1)
  const alarms = createAlarmModel(1)
  for (let i = 0; i < 3; i++) {
    const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
    expect(await publishAcked(client, topic, frame)).toBe(true)
  }
  return client
}

/** Signals what was started once it listens (and a device is connected), then checks the drain and that nothing is left. */
async function stopsCleanly (started: Started, signal: NodeJS.Signals, target: 'process' | 'group'): Promise<void> {
  const listening = await started.logged('vitalflow ingest node listening', 60_000)
  const http = portOf(listening.http)
  const mqtts = portOf(listening.mqtts)
  expect((await fetch(`http://127.0.0.1:${http}/healthz`)).status).toBe(200)
  const device = await connectedDevice(http, mqtts)

  const pid = started.proc.pid!
  process.kill(target === 'group' ? -pid : pid, signal)
  expect((await started.logged('stopping: closing listeners, flushing batches', 10_000)).signal).toBe(signal)
  await started.logged('stopped', 20_000)
  // the node's own status: under npm, npm exits with its script's, and `exec` makes the script the node
  expect(await started.exited).toEqual({ code: 0, signal: null })
  await groupGone(pid, 10_000)
  expect(await connectResult(http)).toBe('ECONNREFUSED')
  expect(await connectResult(mqtts)).toBe('ECONNREFUSED')
  await device.endAsync(true).catch(() => {})
}

beforeAll(async () => {
  // `node dist/main.js` below needs the build that `npm start` runs first
  await promisify(execFile)('npm', ['run', '-s', 'build'], { cwd: root })
}, 120_000)

describe('stopping by signal', () => {
  it('SIGTERM to the pid of `npm start` drains the node; nothing of its process group survives', async () => {
    await stopsCleanly(start('npm', ['start']), 'SIGTERM', 'process')
  }, 120_000)

  it('SIGINT to the process group of `npm start` (Ctrl-C in a terminal) drains the node; nothing survives', async () => {
    await stopsCleanly(start('npm', ['start']), 'SIGINT', 'group')
  }, 120_000)

  it('SIGTERM to `node dist/main.js` itself, as `docker stop` sends it to the image\'s PID 1, drains and exits 0', async () => {
    const started = start(process.execPath, ['dist/main.js'])
    await stopsCleanly(started, 'SIGTERM', 'process')
    expect((await started.logged('vitalflow ingest node listening', 0)).pid).toBe(started.proc.pid)
  }, 120_000)
})
