/**
 * The PROXY protocol (HAProxy's, versions 1 and 2) a TCP load balancer puts in
 * front of a connection to say whose it is. Behind a balancer every device
 * would otherwise share the balancer's address: one device's failed log-ins
 * would back off all of them, and security events and rejection records would
 * name the balancer. The header is trusted only from configured addresses (a
 * device could otherwise claim any address); from those it is required, as the
 * specification demands (a receiver must not guess whether it is there).
 * Specification: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt
 */
import { SocketAddress, isIPv4, isIPv6, type Socket } from 'node:net'

export interface ProxySource { address: string; port: number }

/** LOCAL (v2) and UNKNOWN (v1): the balancer's own connection (a health check); the socket's address stands. */
export type ProxyHeader = { kind: 'proxy'; source: ProxySource } | { kind: 'local' }

export type ProxyParse =
  | { state: 'more' }
  | { state: 'done'; header: ProxyHeader; length: number }
  | { state: 'invalid'; why: string }

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V1_PREFIX = Buffer.from('PROXY ', 'latin1')
/** v1: "a maximum of 107 bytes" including the CRLF. */
const V1_MAX = 107
/** v2: 16 fixed bytes, then addresses and TLVs; a balancer sends at most a few hundred (UNIX addresses are 216). */
export const V2_MAX_BODY = 2048
/** The most a header can take: more buffered than this without a header is refused. */
export const PROXY_HEADER_MAX = 16 + V2_MAX_BODY

const more = { state: 'more' } as const
const invalid = (why: string): ProxyParse => ({ state: 'invalid', why })

/** True while `buf` can still become the start of `prefix`, or already has it. */
function startsLike (buf: Uint8Array, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length)
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return false
  return true
}

/** Reads a header from the first bytes of a connection; `more` until it is whole. Never throws. */
export function parseProxyHeader (buf: Uint8Array): ProxyParse {
  if (buf.length === 0) return more
  if (startsLike(buf, V2_SIGNATURE)) return buf.length < 16 ? more : parseV2(Buffer.from(buf.buffer, buf.byteOffset, buf.length))
  if (startsLike(buf, V1_PREFIX)) return parseV1(buf)
  return invalid('no PROXY protocol header')
}

function parseV1 (buf: Uint8Array): ProxyParse {
  const end = Buffer.from(buf.buffer, buf.byteOffset, Math.min(buf.length, V1_MAX)).indexOf('\r\n', 0, 'latin1')
  if (end < 0) return buf.length >= V1_MAX ? invalid('v1 header longer than 107 bytes') : more
  const line = Buffer.from(buf.buffer, buf.byteOffset, end).toString('latin1')
  const parts = line.split(' ')
  const length = end + 2
  if (parts[1] === 'UNKNOWN') return { state: 'done', header: { kind: 'local' }, length }
  if (parts.length !== 6) return invalid('v1 header without 6 fields')
  const [, family, src, dst, sport, dport] = parts as [string, string, string, string, string, string]
  const isIp = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : null
  if (isIp === null) return invalid('v1 family is not TCP4, TCP6 or UNKNOWN')
  if (!isIp(src) || !isIp(dst)) return invalid('v1 address does not match its family')
  const port = v1Port(sport)
  if (port === null || v1Port(dport) === null) return invalid('v1 port is not 0-65535')
  return { state: 'done', header: { kind: 'proxy', source: { address: src, port } }, length }
}

function v1Port (s: string): number | null {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) return null
  const n = Number(s)
  return n <= 65535 ? n : null
}

function parseV2 (buf: Buffer): ProxyParse {
  const verCmd = buf[12]!
  if (verCmd >> 4 !== 2) return invalid('v2 version is not 2')
  const command = verCmd & 0x0f
  if (command > 1) return invalid('v2 command is neither LOCAL nor PROXY')
  const body = buf.readUInt16BE(14)
  if (body > V2_MAX_BODY) return invalid(`v2 header longer than ${V2_MAX_BODY} bytes`)
  const length = 16 + body
  if (buf.length < length) return more
  if (command === 0) return { state: 'done', header: { kind: 'local' }, length }
  const family = buf[13]! >> 4
  if (family === 1) {
    if (body < 12) return invalid('v2 IPv4 block shorter than 12 bytes')
    const address = [...buf.subarray(16, 20)].join('.')
    return { state: 'done', header: { kind: 'proxy', source: { address, port: buf.readUInt16BE(24) } }, length }
  }
  if (family === 2) {
    if (body < 36) return invalid('v2 IPv6 block shorter than 36 bytes')
    // written as Node's sockets write it (`::` compression, `::ffff:1.2.3.4` for a mapped IPv4 address)
    const groups: string[] = []
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(16 + 2 * i).toString(16))
    return { state: 'done', header: { kind: 'proxy', source: { address: new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address, port: buf.readUInt16BE(48) } }, length }
  }
  // UNSPEC or UNIX: no network address to take; the connection is the balancer's
  return { state: 'done', header: { kind: 'local' }, length }
}

/**
 * Reads the header off a socket and puts back what followed it, so the next
 * reader (TLS or the MQTT guard) sees the connection as the device sent it.
 * Resolves with the header, or rejects (the socket is then destroyed) when the
 * bytes are not a header or none is whole within `timeoutMs`.
 */
export async function readProxyHeader (socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return await new Promise<ProxyHeader>((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0)
    const done = (err: Error | null, header?: ProxyHeader): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      if (err !== null) { socket.destroy(); reject(err) } else resolve(header!)
    }
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      const r = parseProxyHeader(buf)
      if (r.state === 'more') return
      if (r.state === 'invalid') { done(new Error(r.why)); return }
      socket.pause()
      if (buf.length > r.length) socket.unshift(buf.subarray(r.length))
      done(null, r.header)
    }
    const onClose = (): void => { done(new Error('closed before a PROXY header')) }
    const timer = setTimeout(() => { done(new Error('no PROXY header in time')) }, timeoutMs)
    socket.on('data', onData)
    socket.on('close', onClose)
  })
}
