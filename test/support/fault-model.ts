/**
 * Model-based fault testing of a whole node: the node runs as a child process
 * (`node --import tsx src/main.ts`, as `npm start` runs it), a fleet of real
 * mqtt.js devices publishes to it over TLS, and a sequence of operations is
 * applied — publish, idle restart, SIGTERM and kill -9 under load, the log's
 * disk filled and freed, ClickHouse's disk filled and freed (storage refusing
 * writes), the node's clock jumping, a device clock running days ahead. An
 * independent checker records every PUBACK and, after the sequence, reads the
 * stopped store with its own chDB session: every acknowledged (device,
 * sequence) is stored exactly once, nothing is stored that was not sent, and
 * the node is up at the end.
 *
 * The log and ClickHouse sit on two small tmpfs mounts of their own (root
 * only), so "disk full" is a real ENOSPC, not a mock. Without root the disk
 * operations are left out of the generated sequences, and say so.
 * Clock jumps restart the node with its wall clock shifted (clock-shift.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, rmSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import fc from 'fast-check'
import mqtt, { type MqttClient } from 'mqtt'
import { createAdminClient } from '../../src/api/index.ts'
import { createAlarmModel, DeviceSealer, type AlarmModel } from '../../devices/index.ts'
import type { Enrollment } from '../../src/registry/index.ts'
import { fillDisk, mountTmpfs, type Tmpfs } from './tmpfs.ts'
import { publishAcked, tempDir } from './node.ts'

export type Op =
  | { op: 'publish'; devices: number; messages: number }
  | { op: 'idle-restart' }
  | { op: 'sigterm-under-load'; afterMs: number }
  | { op: 'kill9-under-load'; afterMs: number }
  | { op: 'log-disk-full'; leaveBytes: number; publishMs: number }
  | { op: 'storage-disk-full'; publishMs: number }
  | { op: 'clock-jump'; hours: number }
  | { op: 'device-clock-ahead'; days: number; messages: number }

export interface Capabilities { disks: boolean }

export function opArbitrary (caps: Capabilities): fc.Arbitrary<Op> {
  const ops: Array<fc.Arbitrary<Op>> = [
    fc.record({ op: fc.constant('publish' as const), devices: fc.integer({ min: 1, max: 8 }), messages: fc.integer({ min: 1, max: 40 }) }),
    fc.constant({ op: 'idle-restart' as const }),
    fc.record({ op: fc.constant('sigterm-under-load' as const), afterMs: fc.integer({ min: 50, max: 1500 }) }),
    fc.record({ op: fc.constant('kill9-under-load' as const), afterMs: fc.integer({ min: 50, max: 1500 }) }),
    fc.record({ op: fc.constant('clock-jump' as const), hours: fc.integer({ min: -12, max: 12 }) }),
    fc.record({ op: fc.constant('device-clock-ahead' as const), days: fc.integer({ min: 2, max: 30 }), messages: fc.integer({ min: 1, max: 5 }) }),
  ]
  if (caps.disks) {
    ops.push(
      fc.record({ op: fc.constant('log-disk-full' as const), leaveBytes: fc.integer({ min: 0, max: 3 * 1024 * 1024 }), publishMs: fc.integer({ min: 100, max: 1500 }) }),
      fc.record({ op: fc.constant('storage-disk-full' as const), publishMs: fc.integer({ min: 100, max: 1500 }) }),
    )
  }
  return fc.oneof(...ops)
}

export interface Tally { sequences: number; operations: number; sent: number; acknowledged: number; lost: number; duplicated: number; unsent: number; refusedAsExpected: number }

export function newTally (): Tally {
  return { sequences: 0, operations: 0, sent: 0, acknowledged: 0, lost: 0, duplicated: 0, unsent: 0, refusedAsExpected: 0 }
}

interface Device {
  e: Enrollment
  sealer: DeviceSealer
  model: AlarmModel
  client: MqttClient | null
  /** Sent and not acknowledged: a device keeps these and sends them again. */
  backlog: Array<{ topic: string; frame: Uint8Array; seq: number; ahead: boolean }>
}

const TOKEN = 'fault-model-admin-token-0123456789abcdef'
const LOG_DISK = 48 * 1024 * 1024
const STORE_DISK = 64 * 1024 * 1024

/** One sequence's world: data directory (on its own disks where possible), child node, fleet, records. */
export class FaultWorld {
  private child: ChildProcess | null = null
  private exit: Promise<{ code: number | null; signal: string | null }> | null = null
  private ports = { mqtts: 0, http: 0 }
  private clockHours = 0
  private caPem = ''
  readonly devices: Device[] = []
  /** `${device}/${seq}` of everything sent, acknowledged, and acknowledged though meant to be refused (a clock days ahead). */
  readonly sent = new Set<string>()
  readonly acked = new Set<string>()
  readonly refusable = new Set<string>()
  readonly log: string[] = []
  private readonly root: { path: string; remove: () => void }
  private readonly logDisk: Tmpfs | null
  private readonly storeDisk: Tmpfs | null
  readonly dataDir: string

  constructor (readonly caps: Capabilities) {
    this.root = tempDir('vf-model-')
    this.dataDir = join(this.root.path, 'data')
    if (caps.disks) {
      const a = mountTmpfs(LOG_DISK)
      if (!('path' in a)) throw new Error(a.unavailable)
      this.logDisk = a
      this.dataDir = join(a.path, 'data')
      mkdirSync(join(this.dataDir, 'chdb'), { recursive: true })
      // ClickHouse's files on a disk of their own: filling it makes storage refuse writes while the log still takes them
      const b = mountTmpfs(STORE_DISK, join(this.dataDir, 'chdb'))
      if (!('path' in b)) throw new Error(b.unavailable)
      this.storeDisk = b
    } else {
      this.logDisk = null
      this.storeDisk = null
    }
  }

  async start (): Promise<void> {
    const env: Record<string, string> = {
      ...process.env as Record<string, string>, VF_DATA_DIR: this.dataDir, VF_MQTT_TCP: 'false', VF_MQTTS_PORT: '0', VF_MQTTS_HOST: '127.0.0.1',
      VF_MQTTS_MTLS: 'false', VF_HTTP_PORT: '0', VF_ADMIN_TOKEN: TOKEN, VF_DEVICE_AUTH_COST: '10', VF_LOG_LEVEL: 'info', VF_PUBLISH_RATE: '10000',
      VF_PUBLISH_BURST: '100000', VF_SHUTDOWN_TIMEOUT_MS: '5000', VF_DISK_RESERVE_BYTES: String(1024 * 1024), VF_WAL_SEGMENT_BYTES: String(256 * 1024),
      VF_WAL_BUDGET_BYTES: String(16 * 1024 * 1024),
    }
    // the node's wall clock jumps (see clock-shift.ts); its monotonic clock (timers, rate limits) does not
    if (this.clockHours !== 0) env['VF_TEST_CLOCK_OFFSET_MS'] = String(this.clockHours * 3_600_000)
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './test/support/clock-shift.ts', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    this.exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as string | null }))
    child.stderr.on('data', (b: Buffer) => { this.log.push(`stderr: ${b.toString().slice(0, 2000)}`) })
    const lines = createInterface({ input: child.stdout })
    const listening = new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        this.log.push(line.slice(0, 500))
        if (this.log.length > 400) this.log.splice(0, 100)
        let m: { msg?: string; mqtts?: string; http?: string }
        try { m = JSON.parse(line) as typeof m } catch { return }
        if (m.msg === 'vitalflow ingest node listening') {
          this.ports = { mqtts: Number(m.mqtts!.split(':').at(-1)), http: Number(m.http!.split(':').at(-1)) }
          resolve()
        }
      })
      void this.exit!.then((e) => { reject(new Error(`node exited (${JSON.stringify(e)}) before listening\n${this.log.slice(-20).join('\n')}`)) })
    })
    await listening
  }

  private api () { return createAdminClient(`http://127.0.0.1:${this.ports.http}`, TOKEN) }

  async enrol (n: number): Promise<void> {
    const api = this.api()
    this.caPem = (await api.request<{ caPem: string }>('GET', '/admin/connection')).caPem
    await api.request('POST', '/admin/tenants', { tenant: 'care-m', displayName: 'M' })
    for (let i = 0; i < n; i++) {
      const e = await api.request<Enrollment>('POST', '/admin/tenants/care-m/devices', { device: `cal-m${i}`, family: 'calarm' })
      this.devices.push({ e, sealer: new DeviceSealer({ tenant: e.tenant, device: e.device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') }), model: createAlarmModel(100 + i), client: null, backlog: [] })
    }
  }

  /** Stops the node with a signal; a SIGTERM must end in a clean exit. */
  async stop (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const child = this.child
    if (child === null) return
    child.kill(signal)
    const exit = await this.exit!
    this.child = null
    for (const d of this.devices) { d.client?.end(true); d.client = null }
    if (signal === 'SIGTERM' && exit.code !== 0) throw new Error(`SIGTERM ended the node with ${JSON.stringify(exit)}\n${this.log.slice(-20).join('\n')}`)
  }

  get alive (): boolean { return this.child !== null && this.child.exitCode === null && this.child.signalCode === null }

  async ready (): Promise<boolean> {
    try { return (await fetch(`http://127.0.0.1:${this.ports.http}/readyz`)).status === 200 } catch { return false }
  }

  async waitReady (ms: number): Promise<void> {
    const end = Date.now() + ms
    while (!await this.ready()) {
      if (!this.alive) throw new Error(`node died\n${this.log.slice(-20).join('\n')}`)
      if (Date.now() > end) throw new Error(`node not ready after ${ms} ms\n${this.log.slice(-10).join('\n')}`)
      await sleep(100)
    }
  }

  private async connect (d: Device): Promise<MqttClient | null> {
    if (d.client?.connected === true) return d.client
    d.client?.end(true)
    d.client = null
    // mqtt.js settles neither way when the node closes the socket before CONNACK (and nothing else then keeps the
    // loop alive: node exits 13 with this await pending): the harness bounds every connect and publish itself
    const c = mqtt.connect({
      protocol: 'mqtts', host: '127.0.0.1', port: this.ports.mqtts, ca: this.caPem, servername: 'localhost', clientId: d.e.device,
      username: d.e.device, password: d.e.secret, reconnectPeriod: 0, connectTimeout: 5000, clean: true,
    })
    c.on('error', () => {})
    const ok = await bounded(new Promise<boolean>((resolve) => {
      c.once('connect', () => { resolve(true) })
      c.once('close', () => { resolve(false) })
    }), 8000, false)
    if (!ok) { c.end(true); return null }
    d.client = c
    return c
  }

  /** Sends the device's backlog, then `count` new messages (or until `stop()`); records every PUBACK. */
  private async run (d: Device, count: number, stop: () => boolean, aheadDays = 0): Promise<void> {
    let made = 0
    while (!stop()) {
      if (d.backlog.length === 0) {
        if (made >= count) return
        made++
        const ahead = aheadDays > 0
        const m = d.sealer.seal('alarm', d.model.next(Date.now() - 1000 + aheadDays * 86_400_000))
        d.backlog.push({ ...m, ahead })
        const k = `${d.e.device}/${m.seq}`
        this.sent.add(k)
        if (ahead) this.refusable.add(k)
      }
      const c = await this.connect(d)
      if (c === null) { await sleep(50); continue }
      const m = d.backlog[0]!
      if (await bounded(publishAcked(c, m.topic, m.frame), 10_000, false)) {
        this.acked.add(`${d.e.device}/${m.seq}`)
        d.backlog.shift()
      } else {
        await sleep(20)
      }
    }
  }

  /** Every device publishes until `stop` says so. */
  private load (stop: () => boolean): Promise<void> {
    return Promise.all(this.devices.map((d) => this.run(d, Number.POSITIVE_INFINITY, stop))).then(() => {})
  }

  async apply (o: Op): Promise<void> {
    switch (o.op) {
      case 'publish': {
        await Promise.all(this.devices.slice(0, o.devices).map((d) => this.run(d, o.messages, () => false)))
        return
      }
      case 'idle-restart':
        await this.stop('SIGTERM')
        await this.start()
        return
      case 'sigterm-under-load':
      case 'kill9-under-load': {
        let stopped = false
        const load = this.load(() => stopped)
        await sleep(o.afterMs)
        await this.stop(o.op === 'kill9-under-load' ? 'SIGKILL' : 'SIGTERM')
        stopped = true
        await load
        await this.start()
        return
      }
      case 'log-disk-full':
      case 'storage-disk-full': {
        const disk = o.op === 'log-disk-full' ? this.logDisk! : this.storeDisk!
        const filler = fillDisk(disk.path, o.op === 'log-disk-full' ? o.leaveBytes : 0, () => freeBytes(disk.path))
        let stopped = false
        const load = this.load(() => stopped)
        await sleep(o.publishMs)
        if (!this.alive) throw new Error(`node died on a full disk (${o.op})\n${this.log.slice(-20).join('\n')}`)
        rmSync(filler)
        await this.waitReady(30_000)
        stopped = true
        await load
        return
      }
      case 'clock-jump':
        await this.stop('SIGTERM')
        this.clockHours = o.hours
        await this.start()
        return
      case 'device-clock-ahead':
        await this.run(this.devices[0]!, o.messages, () => false, o.days)
        return
    }
  }

  /** Ends the sequence: devices resend what they still hold, the node stops; then the stopped store is read and checked. */
  async check (tally: Tally): Promise<{ lost: string[]; duplicated: string[]; unsent: string[]; stored: Map<string, number> }> {
    await this.waitReady(30_000)
    await Promise.all(this.devices.map((d) => this.run(d, 0, () => false)))
    await this.stop('SIGTERM')
    // the node leaves for the next start what it could not ship in time: a start replays it
    await this.start()
    await this.stop('SIGTERM')
    const stored = await readStopped(this.dataDir)
    const lost: string[] = []
    const duplicated: string[] = []
    for (const k of this.acked) {
      const n = stored.get(k) ?? 0
      if (this.refusable.has(k)) { if (n === 0) tally.refusedAsExpected++; else duplicated.push(`${k} (stored though its clock was days ahead)`); continue }
      if (n === 0) lost.push(k)
    }
    for (const [k, n] of stored) if (n > 1) duplicated.push(`${k} ×${n}`)
    const unsent = [...stored.keys()].filter((k) => !this.sent.has(k))
    tally.sequences++
    tally.sent += this.sent.size
    tally.acknowledged += this.acked.size
    tally.lost += lost.length
    tally.duplicated += duplicated.length
    tally.unsent += unsent.length
    return { lost, duplicated, unsent, stored }
  }

  async dispose (): Promise<void> {
    await this.stop('SIGKILL').catch(() => {})
    this.storeDisk?.unmount()
    this.logDisk?.unmount()
    this.root.remove()
  }
}

function freeBytes (dir: string): number {
  const s = statfsSync(dir)
  return s.bavail * s.bsize
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** `p`, or `fallback` after `ms` (the timer also keeps the event loop alive meanwhile). */
function bounded<T> (p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<T>((resolve) => { timer = setTimeout(() => { resolve(fallback) }, ms) })]).finally(() => { clearTimeout(timer) })
}

/** Counts stored alarm rows by `${device}/${seq}`, from the stopped node's files, in a process of its own. */
async function readStopped (dataDir: string): Promise<Map<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/read-alarm-rows.ts', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (b: Buffer) => { out += b.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`reading the stopped store failed (exit ${code})`)
  return new Map(Object.entries(JSON.parse(out) as Record<string, number>))
}
