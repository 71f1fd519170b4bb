/**
 * PROXY protocol (v1 and v2) on the MQTT listeners: the parser (property
 * tests), the trust rule (only configured balancers may speak it, and from them
 * it is required), and a real Debian haproxy in front of a real node: back-off,
 * security records and rejection rows see the device's address, not the
 * balancer's, over plain MQTT (v1 header) and MQTT over TLS (v2 header).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { createServer, isIPv4, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import fc from 'fast-check'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addressList, onList } from '../src/addresses.ts'
import { parseProxyHeader, PROXY_HEADER_MAX } from '../src/broker/proxy-protocol.ts'
import { loadConfig } from '../src/config/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { connack, connectPacket, rawSocket } from './support/raw-mqtt.ts'
import { count, publishAcked, rowsOf, startTestNode, tempDir } from './support/node.ts'
import { requireTool } from './support/tools.ts'

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

function v1 (family: 'TCP4' | 'TCP6', src: string, dst: string, sport: number, dport: number): Buffer {
  return Buffer.from(`PROXY ${family} ${src} ${dst} ${sport} ${dport}\r\n`, 'latin1')
}

function ipv6Bytes (a: string): Buffer {
  const [head, tail] = a.includes('::') ? a.split('::') as [string, string] : [a, undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => { out.writeUInt16BE(parseInt(g, 16), 2 * i) })
  return out
}

/** A v2 PROXY (or LOCAL) header, as haproxy writes one, with optional TLV bytes after the addresses. */
function v2 (o: { local?: boolean; src: string; dst: string; sport: number; dport: number; tlv?: Buffer }): Buffer {
  const four = isIPv4(o.src)
  const addr = four
    ? Buffer.concat([Buffer.from(o.src.split('.').map(Number)), Buffer.from(o.dst.split('.').map(Number)), Buffer.alloc(4)])
    : Buffer.concat([ipv6Bytes(o.src), ipv6Bytes(o.dst), Buffer.alloc(4)])
  addr.writeUInt16BE(o.sport, addr.length - 4)
  addr.writeUInt16BE(o.dport, addr.length - 2)
  const body = Buffer.concat([addr, o.tlv ?? Buffer.alloc(0)])
  const head = Buffer.alloc(4)
  head[0] = o.local === true ? 0x20 : 0x21
  head[1] = four ? 0x11 : 0x21
  head.writeUInt16BE(body.length, 2)
  return Buffer.concat([V2_SIGNATURE, head, body])
}

const port = fc.integer({ min: 0, max: 65535 })
const ipv4 = fc.ipV4()
// compressed or not, Node's form is what the parser must give back
const ipv6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
  .map((g) => new URL(`http://[${g.map((x) => x.toString(16)).join(':')}]/`).hostname.slice(1, -1))

describe('PROXY protocol header parser', () => {
  it('reads back the source of any v1 or v2 header, whole or cut at any point, and says where the device\'s bytes start', () => {
    const header = fc.oneof(
      fc.tuple(ipv4, ipv4, port, port).map(([s, d, sp, dp]) => ({ bytes: v1('TCP4', s, d, sp, dp), src: s, sport: sp })),
      fc.tuple(ipv6, ipv6, port, port).map(([s, d, sp, dp]) => ({ bytes: v1('TCP6', s, d, sp, dp), src: s, sport: sp })),
      fc.tuple(ipv4, ipv4, port, port, fc.uint8Array({ maxLength: 40 })).map(([s, d, sp, dp, t]) => ({ bytes: v2({ src: s, dst: d, sport: sp, dport: dp, tlv: Buffer.from(t) }), src: s, sport: sp })),
      fc.tuple(ipv6, ipv6, port, port).map(([s, d, sp, dp]) => ({ bytes: v2({ src: s, dst: d, sport: sp, dport: dp }), src: s, sport: sp })),
    )
    fc.assert(fc.property(header, fc.uint8Array({ maxLength: 64 }), fc.nat(), ({ bytes, src, sport }, after, cut) => {
      const stream = Buffer.concat([bytes, after])
      // any strict prefix of the header: wait for more
      expect(parseProxyHeader(bytes.subarray(0, cut % bytes.length)).state).toBe('more')
      const r = parseProxyHeader(stream)
      expect(r).toEqual({ state: 'done', length: bytes.length, header: { kind: 'proxy', source: { address: src, port: sport } } })
    }))
  })

  it('gives LOCAL and UNKNOWN headers (the balancer\'s own connection) no address', () => {
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ state: 'done', length: 15, header: { kind: 'local' } })
    const local = v2({ local: true, src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 })
    expect(parseProxyHeader(local)).toEqual({ state: 'done', length: local.length, header: { kind: 'local' } })
  })

  it('never throws on arbitrary bytes, refuses what cannot start a header at once, and never waits past the longest header', () => {
    fc.assert(fc.property(fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([Buffer.from('PROXY '), b])),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([V2_SIGNATURE, b])),
    ), (bytes) => {
      const r = parseProxyHeader(bytes)
      const couldStart = [Buffer.from('PROXY '), V2_SIGNATURE].some((p) => p.subarray(0, Math.min(p.length, bytes.length)).equals(Buffer.from(bytes).subarray(0, Math.min(p.length, bytes.length))))
      if (!couldStart) expect(r.state).toBe('invalid')
      if (r.state === 'done') expect(r.length).toBeLessThanOrEqual(bytes.length)
    }))
    expect(parseProxyHeader(Buffer.concat([Buffer.from('PROXY TCP4 '), Buffer.alloc(200, 0x31)])).state).toBe('invalid')
    const huge = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])])
    expect(parseProxyHeader(huge).state).toBe('invalid')
    expect(PROXY_HEADER_MAX).toBeLessThan(0xffff)
  })

  it('refuses v1 headers whose fields lie: family and address disagree, a port out of range, fields missing', () => {
    for (const line of ['PROXY TCP4 ::1 ::1 1 2\r\n', 'PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n', 'PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n',
      'PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n', 'PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n', 'PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n']) {
      expect(parseProxyHeader(Buffer.from(line)).state, line).toBe('invalid')
    }
  })
})

describe('trusted balancer addresses', () => {
  it('matches an address inside a configured range and not one outside it', () => {
    fc.assert(fc.property(ipv4, fc.integer({ min: 8, max: 32 }), ipv4, (net, bits, probe) => {
      const toInt = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0)
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
      const inside = ((toInt(net) & mask) >>> 0) === ((toInt(probe) & mask) >>> 0)
      const list = addressList([`${net}/${bits}`])
      expect(onList(list, probe)).toBe(inside)
      expect(onList(list, `::ffff:${probe}`)).toBe(inside)
    }))
  })

  it('refuses a configuration entry that is neither an address nor a range, naming it', () => {
    expect(() => loadConfig({ VF_PROXY_PROTOCOL_FROM: '10.0.0.1, lb.example' })).toThrow(/VF_PROXY_PROTOCOL_FROM: not an IP address: lb.example/)
    expect(() => loadConfig({ VF_PROXY_PROTOCOL_FROM: '10.0.0.0/33' })).toThrow(/not a prefix length/)
    expect(loadConfig({ VF_PROXY_PROTOCOL_FROM: '10.0.0.1, fd00::/8' }).PROXY_PROTOCOL_FROM).toEqual(['10.0.0.1', 'fd00::/8'])
    expect(loadConfig({}).PROXY_PROTOCOL_FROM).toEqual([])
  })
})

/** The balancer's address in these tests: haproxy connects from it, and the node trusts it. */
const BALANCER = '127.0.0.9'
const alarms = createAlarmModel(3)

describe('a node that trusts one balancer', () => {
  let dir: ReturnType<typeof tempDir>
  let node: IngestNode
  let device: Enrollment

  beforeAll(async () => {
    dir = tempDir()
    node = await startTestNode(dir.path, { PROXY_PROTOCOL_FROM: [BALANCER], AUTH_FREE_FAILURES: 2, AUTH_MAX_BACKOFF_S: 60, TLS_HANDSHAKE_TIMEOUT_MS: 500 })
    await node.registry.createTenant('care-px', 'PX')
    device = await node.registry.enrollDevice({ tenant: 'care-px', device: 'cal-px0', family: 'calarm', patient: null })
  }, 60_000)
  afterAll(async () => {
    await node?.close()
    dir?.remove()
  })

  const rejectionsFrom = async (address: string, reason: string): Promise<number> =>
    await count(node, 'rejected_messages', 'remote_address = {a:String} AND reason = {r:String}', { a: address, r: reason })

  it('takes the header from the balancer, with the CONNECT behind it in the same segment, and records the address it names', async () => {
    const s = await rawSocket(node.mqtt!.port, BALANCER)
    const code = await connack(s, Buffer.concat([v1('TCP4', '10.9.8.7', '10.0.0.1', 40000, 1883), connectPacket({ clientId: device.device, username: device.device, password: 'wrong' })]))
    s.destroy()
    expect(code).toBe(4)
    expect(await rejectionsFrom('10.9.8.7', 'ING_ERR_AUTH')).toBe(1)
    expect(await rejectionsFrom(BALANCER, 'ING_ERR_AUTH')).toBe(0)
  })

  it('reads a v2 header that arrives a byte at a time', async () => {
    const s = await rawSocket(node.mqtt!.port, BALANCER)
    const header = v2({ src: '10.9.8.6', dst: '10.0.0.1', sport: 40001, dport: 1883 })
    for (const b of header) { s.write(Buffer.from([b])); await new Promise((resolve) => setImmediate(resolve)) }
    const code = await connack(s, connectPacket({ clientId: device.device, username: device.device, password: device.secret }))
    s.destroy()
    expect(code).toBe(0)
  })

  it('refuses a balancer connection without a header, and records why under the balancer\'s address', async () => {
    const s = await rawSocket(node.mqtt!.port, BALANCER)
    expect(await connack(s, connectPacket({ clientId: device.device, username: device.device, password: device.secret }))).toBe('closed')
    const rows = await rowsOf<{ detail: string }>(node, 'SELECT detail FROM {db}.rejected_messages WHERE remote_address = {a:String} AND reason = \'ING_ERR_PROTOCOL\'', { a: BALANCER })
    expect(rows.map((r) => r.detail)).toContain('PROXY protocol: no PROXY protocol header')
  })

  it('closes a balancer connection whose header never completes, once the handshake time is up', async () => {
    const s = await rawSocket(node.mqtt!.port, BALANCER)
    s.write('PROXY TCP4 10.1.1.1')
    await once(s, 'close')
    const rows = await rowsOf<{ detail: string }>(node, 'SELECT detail FROM {db}.rejected_messages WHERE remote_address = {a:String}', { a: BALANCER })
    expect(rows.map((r) => r.detail)).toContain('PROXY protocol: no PROXY header in time')
  })

  it('does not believe a header from anyone else: the claimed address is never recorded', async () => {
    const s = await rawSocket(node.mqtt!.port, '127.0.0.1')
    const code = await connack(s, Buffer.concat([v1('TCP4', '10.6.6.6', '10.0.0.1', 1, 2), connectPacket({ clientId: 'y', username: device.device, password: device.secret })]))
    s.destroy()
    expect(code).toBe('closed')
    expect(await count(node, 'rejected_messages', 'remote_address = {a:String}', { a: '10.6.6.6' })).toBe(0)
    expect(await rejectionsFrom('127.0.0.1', 'ING_ERR_PROTOCOL')).toBeGreaterThanOrEqual(1)
  })
})

const withHaproxy = requireTool('haproxy')

async function freePort (): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const { port: p } = s.address() as AddressInfo
  await new Promise((resolve) => s.close(resolve))
  return p
}

async function waitListening (p: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const s = await rawSocket(p)
      s.destroy()
      return
    } catch { await new Promise((resolve) => setTimeout(resolve, 50)) }
  }
  throw new Error(`haproxy did not listen on ${p}`)
}

describe('behind a real haproxy', () => {
  let dir: ReturnType<typeof tempDir>
  let node: IngestNode
  let haproxy: ChildProcess | undefined
  let front: { tcp: number; tls: number }
  const devices: Enrollment[] = []

  beforeAll(async () => {
    dir = tempDir()
    node = await startTestNode(dir.path, { PROXY_PROTOCOL_FROM: [BALANCER], AUTH_FREE_FAILURES: 2, AUTH_MAX_BACKOFF_S: 60 })
    await node.registry.createTenant('care-hx', 'HX')
    for (let i = 0; i < 2; i++) devices.push(await node.registry.enrollDevice({ tenant: 'care-hx', device: `cal-hx${i}`, family: 'calarm', patient: null }))
  }, 60_000)
  afterAll(async () => {
    haproxy?.kill('SIGTERM')
    await node?.close()
    dir?.remove()
  })

  const startHaproxy = async (): Promise<void> => {
    front = { tcp: await freePort(), tls: await freePort() }
    const cfg = join(dir.path, 'haproxy.cfg')
    writeFileSync(cfg, [
      'global', '  maxconn 1000',
      'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s',
      // plain MQTT with a v1 (text) header, MQTT over TLS with a v2 (binary) header; haproxy connects from BALANCER
      'frontend mqtt', `  bind 127.0.0.1:${front.tcp}`, '  default_backend node_mqtt',
      'backend node_mqtt', `  server n1 127.0.0.1:${node.mqtt!.port} send-proxy source ${BALANCER}`,
      'frontend mqtts', `  bind 127.0.0.1:${front.tls}`, '  default_backend node_mqtts',
      'backend node_mqtts', `  server n1 127.0.0.1:${node.mqtts.port} send-proxy-v2 source ${BALANCER}`,
      '',
    ].join('\n'))
    haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    haproxy.stderr!.on('data', (d: Buffer) => { err += d.toString() })
    haproxy.once('exit', (code) => { if (code !== 0 && code !== null) process.stderr.write(`haproxy exited ${code}: ${err}\n`) })
    await waitListening(front.tcp)
    await waitListening(front.tls)
  }

  withHaproxy('backs off the device that failed, not every device behind the balancer (plain MQTT, v1 header)', async () => {
    await startHaproxy()
    const [d] = devices as [Enrollment]
    const attempt = async (password: string, from: string): Promise<number | 'closed'> => {
      const s = await rawSocket(front.tcp, from)
      const code = await connack(s, connectPacket({ clientId: d.device, username: d.device, password }))
      s.destroy()
      return code
    }
    // two free failures, a third starts the back-off: the right secret is then refused from that address
    for (let i = 0; i < 3; i++) expect(await attempt('wrong', '127.0.0.5')).toBe(4)
    expect(await attempt(d.secret, '127.0.0.5')).toBe(5)
    // another device address behind the same balancer is served (without the header both were 127.0.0.9)
    expect(await attempt(d.secret, '127.0.0.6')).toBe(0)
    expect(await count(node, 'rejected_messages', "remote_address = '127.0.0.5' AND reason = 'ING_ERR_AUTH'")).toBe(3)
    expect(await count(node, 'rejected_messages', "remote_address = '127.0.0.5' AND reason = 'ING_ERR_AUTH_BACKOFF'")).toBe(1)
    expect(await count(node, 'rejected_messages', 'remote_address = {a:String}', { a: BALANCER })).toBe(0)
  }, 60_000)

  withHaproxy('carries MQTT over TLS with a v2 header: a device publishes through the balancer and its alarm is stored', async () => {
    if (haproxy === undefined) await startHaproxy()
    const d = devices[1]!
    const wrong = await mqtt.connectAsync({
      protocol: 'mqtts', host: '127.0.0.1', port: front.tls, ca: node.caPem!, servername: 'localhost',
      clientId: d.device, username: d.device, password: 'wrong', reconnectPeriod: 0, connectTimeout: 5000, ...{ localAddress: '127.0.0.7' },
    }).then(() => 'connected', (err: unknown) => (err as Error).message)
    expect(wrong).toMatch(/Bad username or password|Not authorized/i)
    const c = await mqtt.connectAsync({
      protocol: 'mqtts', host: '127.0.0.1', port: front.tls, ca: node.caPem!, servername: 'localhost',
      clientId: d.device, username: d.device, password: d.secret, reconnectPeriod: 0, connectTimeout: 5000, ...{ localAddress: '127.0.0.8' },
    })
    const sealer = new DeviceSealer({ tenant: d.tenant, device: d.device, keyId: 1, key: Buffer.from(d.key, 'base64url') })
    const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
    expect(await publishAcked(c, topic, frame)).toBe(true)
    await c.endAsync()
    expect(await count(node, 'alarm_events', 'device_id = {d:String}', { d: d.device })).toBe(1)
    expect(await count(node, 'rejected_messages', "remote_address = '127.0.0.7' AND reason = 'ING_ERR_AUTH'")).toBe(1)
    expect(await count(node, 'rejected_messages', 'remote_address = {a:String}', { a: BALANCER })).toBe(0)
  }, 60_000)
})
