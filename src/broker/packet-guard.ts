/**
 * A byte-limit stage between a socket and aedes.handle. aedes 1.x buffers a
 * whole packet before looking at it and has no maximum packet size (aedes issue
 * #831): a CONNECT claiming 200 MB grows the broker by 200 MB. The guard reads
 * each MQTT fixed header as the bytes stream past and drops the connection as
 * soon as a remaining length exceeds the limit, before any of the body is
 * buffered. It also insists that the first packet is a CONNECT.
 */
import { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import type { Client } from 'aedes'
import { BrokerReason, DEVICE_ANSWERS } from '../reasons.ts'
import { isConnectedV5 } from './mqtt5.ts'
import type { ReadScheduler } from './read-scheduler.ts'

export interface GuardLimits {
  /** Largest packet accepted after CONNECT (fixed header excluded). */
  maxPacketBytes: number
  /** Largest CONNECT (client id, credentials, will). */
  maxConnectBytes: number
}

export type GuardViolation = typeof BrokerReason.size | typeof BrokerReason.protocol

const HEADER = 0
const LENGTH = 1
const BODY = 2

const SUBSCRIBE = 8
const UNSUBSCRIBE = 10

/**
 * A SUBSCRIBE or UNSUBSCRIBE body with every topic filter that names a property of every
 * JavaScript object (`__proto__`, `constructor`, ...) overwritten with `!` of the same length, in
 * place. aedes 2.0.0-beta.1 keys subscriptions by filter in plain objects: a SUBSCRIBE of
 * `__proto__` and one more filter throws inside aedes and ends the process (GHSA-52qw-whmv-87c5,
 * fixed in aedes 1.2, not in the beta). `!!!…` is no topic a device may subscribe to, so it gets
 * the refusal any foreign filter gets (SUBACK 0x80, MQTT 5 0x87), as such a filter did on 1.2.
 * Malformed bodies are left for aedes to refuse.
 */
export function neutraliseFilters (type: number, body: Buffer, mqtt5: boolean): void {
  let i = 2 // packet identifier
  if (mqtt5) {
    let props = 0
    for (let mul = 1, k = 0; k < 4 && i < body.length; k++, mul *= 128) {
      const b = body[i++]!
      props += (b & 0x7f) * mul
      if ((b & 0x80) === 0) break
    }
    i += props
  }
  while (i + 2 <= body.length) {
    const n = body.readUInt16BE(i)
    i += 2
    if (i + n > body.length) return
    if (n <= 20 && Object.hasOwn(Object.prototype, body.toString('latin1', i, i + n))) body.fill(0x21, i, i + n)
    i += n + (type === SUBSCRIBE ? 1 : 0)
  }
}

/**
 * Incremental MQTT frame scanner: feed it chunks, it answers null or the first violation, and hands
 * what may go on to aedes to `forward`: the bytes as they came, except SUBSCRIBE and UNSUBSCRIBE
 * packets, which are held until whole and forwarded with their filters neutralised (above).
 */
export class FrameScanner {
  private state = HEADER
  private first = true
  private isConnect = false
  private length = 0
  private multiplier = 1
  private lengthBytes = 0
  private remaining = 0
  /** The first bytes of the CONNECT body: its protocol level follows the protocol name. */
  private readonly connectHead: number[] = []
  private mqtt5 = false
  /** A SUBSCRIBE/UNSUBSCRIBE being held: its fixed header, then its body. */
  private held: { type: number; header: number[]; body: Buffer; at: number } | null = null

  constructor (private readonly limits: GuardLimits, private readonly forward: (b: Uint8Array) => void = () => {}) {}

  /** Whether the CONNECT asked for MQTT 5 (known once its first bytes have passed). */
  get isMqtt5 (): boolean { return this.mqtt5 }

  scan (chunk: Uint8Array): GuardViolation | null {
    let i = 0
    let from = 0 // start of the bytes of this chunk not yet forwarded
    const n = chunk.length
    while (i < n) {
      switch (this.state) {
        case HEADER: {
          const byte = chunk[i]!
          const type = byte >> 4
          if (this.first && type !== 1) return BrokerReason.protocol
          this.isConnect = type === 1
          if (!this.first && this.isConnect) return BrokerReason.protocol // a second CONNECT is a protocol violation [MQTT-3.1.0-2]
          this.first = false
          if (type === SUBSCRIBE || type === UNSUBSCRIBE) {
            if (i > from) this.forward(chunk.subarray(from, i))
            this.held = { type, header: [byte], body: Buffer.alloc(0), at: 0 }
          }
          i++
          this.state = LENGTH
          this.length = 0
          this.multiplier = 1
          this.lengthBytes = 0
          break
        }
        case LENGTH: {
          const b = chunk[i++]!
          this.held?.header.push(b)
          this.length += (b & 0x7f) * this.multiplier
          this.multiplier *= 128
          this.lengthBytes++
          if ((b & 0x80) !== 0) {
            if (this.lengthBytes === 4) return BrokerReason.protocol
            break
          }
          if (this.length > (this.isConnect ? this.limits.maxConnectBytes : this.limits.maxPacketBytes)) return BrokerReason.size
          this.remaining = this.length
          if (this.held !== null) this.held.body = Buffer.alloc(this.length)
          this.state = this.remaining === 0 ? HEADER : BODY
          if (this.remaining === 0 && this.held !== null) { this.release(); from = i }
          break
        }
        default: {
          const take = Math.min(this.remaining, n - i)
          if (this.isConnect) this.noteConnect(chunk, i, take)
          if (this.held !== null) {
            this.held.body.set(chunk.subarray(i, i + take), this.held.at)
            this.held.at += take
          }
          i += take
          this.remaining -= take
          if (this.remaining === 0) {
            this.state = HEADER
            if (this.held !== null) { this.release(); from = i }
          }
        }
      }
    }
    // the rest of the chunk goes on, unless it is part of a packet being held
    if (this.held === null && from < n) this.forward(from === 0 ? chunk : chunk.subarray(from))
    return null
  }

  private noteConnect (chunk: Uint8Array, at: number, take: number): void {
    for (let k = 0; k < take && this.connectHead.length < 12; k++) this.connectHead.push(chunk[at + k]!)
    const nameLength = ((this.connectHead[0] ?? 0) << 8) | (this.connectHead[1] ?? 0)
    const level = this.connectHead[2 + nameLength]
    if (level !== undefined) this.mqtt5 = level === 5
  }

  private release (): void {
    const h = this.held!
    this.held = null
    neutraliseFilters(h.type, h.body, this.mqtt5)
    this.forward(Buffer.concat([Buffer.from(h.header), h.body]))
  }
}

/** The socket as aedes sees it: same bytes, same writes, but a connection that breaks the limits is cut. */
export class GuardedConnection extends Duplex {
  private readonly scanner: FrameScanner
  /** Set once the connection authenticates as a device whose data goes ahead of telemetry (read-scheduler.ts). */
  priority = false

  /**
   * `peerAddress`: the device's address when a trusted load balancer said it (PROXY protocol); else the socket's.
   * `reads`: when the connection's data is taken while the node is busy (none: always at once).
   */
  constructor (readonly socket: Socket, limits: GuardLimits, onViolation: (v: GuardViolation, remoteAddress: string) => void, private readonly peerAddress?: string, reads?: ReadScheduler) {
    super({ allowHalfOpen: false })
    let paused = false
    this.scanner = new FrameScanner(limits, (b) => { if (!this.push(b)) paused = true })
    const take = (chunk: Buffer): void => {
      paused = false
      const v = this.scanner.scan(chunk)
      if (v !== null) {
        onViolation(v, this.remoteAddress ?? '')
        // aedes hangs its client on the connection it handles; an MQTT 5 one past CONNACK is told why
        const client = (this as { client?: Client }).client
        if (isConnectedV5(client)) {
          socket.pause()
          client.disconnect({ reasonCode: DEVICE_ANSWERS[v === BrokerReason.size ? 'size' : 'protocol'].code })
          return
        }
        socket.destroy()
        this.destroy()
        return
      }
      if (paused) socket.pause()
    }
    /** Chunks of this connection waiting in the scheduler (its socket paused meanwhile); its end and close, if they came meanwhile. */
    let waiting = 0
    let ended = false
    let closed = false
    socket.on('data', (chunk: Buffer) => {
      if (reads === undefined) { take(chunk); return }
      let queued = false
      // behind its own waiting chunks even once it is a priority connection: never reordered
      const now = reads.run(() => {
        if (!queued) { take(chunk); return }
        waiting--
        if (this.destroyed) return // cut meanwhile (a violation): unacknowledged, so the device sends it again
        take(chunk)
        if (this.destroyed || waiting > 0) return
        // what came before the end or close is taken first, as it would have been without waiting
        if (ended) this.push(null)
        if (closed) setImmediate(() => { this.destroy() })
        else if (!ended && !paused) socket.resume()
      }, this.priority && waiting === 0)
      if (!now) { queued = true; waiting++; socket.pause() }
    })
    socket.on('end', () => { if (waiting > 0) ended = true; else this.push(null) })
    socket.on('error', (err) => { this.destroy(err) })
    socket.on('close', () => { if (waiting > 0) closed = true; else this.destroy() })
  }

  get remoteAddress (): string | undefined { return this.peerAddress ?? this.socket.remoteAddress }

  override _read (): void { this.socket.resume() }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.send(chunk, cb)
  }

  /**
   * What aedes wrote while this stream was corked, as one write to the socket. mqtt-packet corks the
   * stream for each packet until the next tick and writes a PUBACK in three pieces: without this, each
   * piece was a write of its own to the TLS socket, so a TLS record and a send each.
   */
  override _writev (chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb)
  }

  /** To the socket; done once it took the bytes, or drained if it had to buffer them. */
  private send (bytes: Buffer, cb: (err?: Error | null) => void): void {
    if (this.socket.write(bytes)) cb()
    else this.socket.once('drain', () => { cb() })
  }

  override _final (cb: (err?: Error | null) => void): void {
    // a connection whose data waited (read-scheduler.ts) ends after its socket did
    if (this.socket.destroyed || this.socket.writableEnded) { cb(); return }
    this.socket.end(cb)
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy()
    cb(err)
  }
}
