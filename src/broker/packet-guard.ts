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

/** Incremental MQTT frame scanner: feed it chunks, it answers null or the first violation. */
export class FrameScanner {
  private state = HEADER
  private first = true
  private isConnect = false
  private length = 0
  private multiplier = 1
  private lengthBytes = 0
  private remaining = 0

  constructor (private readonly limits: GuardLimits) {}

  scan (chunk: Uint8Array): GuardViolation | null {
    let i = 0
    const n = chunk.length
    while (i < n) {
      switch (this.state) {
        case HEADER: {
          const type = chunk[i++]! >> 4
          if (this.first && type !== 1) return BrokerReason.protocol
          this.isConnect = type === 1
          if (!this.first && this.isConnect) return BrokerReason.protocol // a second CONNECT is a protocol violation [MQTT-3.1.0-2]
          this.first = false
          this.state = LENGTH
          this.length = 0
          this.multiplier = 1
          this.lengthBytes = 0
          break
        }
        case LENGTH: {
          const b = chunk[i++]!
          this.length += (b & 0x7f) * this.multiplier
          this.multiplier *= 128
          this.lengthBytes++
          if ((b & 0x80) !== 0) {
            if (this.lengthBytes === 4) return BrokerReason.protocol
            break
          }
          if (this.length > (this.isConnect ? this.limits.maxConnectBytes : this.limits.maxPacketBytes)) return BrokerReason.size
          this.remaining = this.length
          this.state = this.remaining === 0 ? HEADER : BODY
          break
        }
        default: {
          const take = Math.min(this.remaining, n - i)
          i += take
          this.remaining -= take
          if (this.remaining === 0) this.state = HEADER
        }
      }
    }
    return null
  }
}

/** The socket as aedes sees it: same bytes, same writes, but a connection that breaks the limits is cut. */
export class GuardedConnection extends Duplex {
  private readonly scanner: FrameScanner

  /** `peerAddress`: the device's address when a trusted load balancer said it (PROXY protocol); else the socket's. */
  constructor (readonly socket: Socket, limits: GuardLimits, onViolation: (v: GuardViolation, remoteAddress: string) => void, private readonly peerAddress?: string) {
    super({ allowHalfOpen: false })
    this.scanner = new FrameScanner(limits)
    socket.on('data', (chunk: Buffer) => {
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
      if (!this.push(chunk)) socket.pause()
    })
    socket.on('end', () => { this.push(null) })
    socket.on('error', (err) => { this.destroy(err) })
    socket.on('close', () => { this.destroy() })
  }

  get remoteAddress (): string | undefined { return this.peerAddress ?? this.socket.remoteAddress }

  override _read (): void { this.socket.resume() }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.write(chunk)) cb()
    else this.socket.once('drain', () => { cb() })
  }

  override _final (cb: (err?: Error | null) => void): void { this.socket.end(cb) }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy()
    cb(err)
  }
}
