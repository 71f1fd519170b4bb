/**
 * A raw MQTT 5 connection for tests that must send what a client library will
 * not (aliases out of range, property floods) or see every byte the broker
 * answers: packets are built and parsed with mqtt-packet (the codec mqtt.js
 * and aedes use), the socket is plain TCP on loopback.
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { rawSocket } from './raw-mqtt.ts'

export class Raw5 {
  private readonly queue: Packet[] = []
  private waiter: (() => void) | null = null
  closed = false
  /** Every byte the broker sent, in order. */
  bytes = Buffer.alloc(0)

  private constructor (readonly socket: Socket) {
    const parser = mqttPacket.parser({ protocolVersion: 5 })
    parser.on('packet', (p: Packet) => { this.queue.push(p); this.waiter?.() })
    parser.on('error', () => {})
    socket.on('data', (d: Buffer) => { this.bytes = Buffer.concat([this.bytes, d]); parser.parse(d) })
    socket.on('close', () => { this.closed = true; this.waiter?.() })
    socket.on('error', () => {})
  }

  static async open (port: number, localAddress?: string): Promise<Raw5> {
    return new Raw5(await rawSocket(port, localAddress))
  }

  send (p: Packet | Buffer): void {
    this.socket.write(Buffer.isBuffer(p) ? p : mqttPacket.generate(p, { protocolVersion: 5 }))
  }

  /** The next packet from the broker, or null once it has closed the connection without one. */
  async next (): Promise<Packet | null> {
    while (this.queue.length === 0 && !this.closed) await new Promise<void>((resolve) => { this.waiter = resolve })
    this.waiter = null
    return this.queue.shift() ?? null
  }

  async connect (clientId: string, username: string, password: string, properties: Record<string, unknown> = {}, clean = true): Promise<Packet | null> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId, username, password: Buffer.from(password), clean, keepalive: 30, properties })
    return await this.next()
  }

  async closedByBroker (): Promise<void> {
    if (!this.closed) await once(this.socket, 'close')
  }

  end (): void { this.socket.destroy() }
}
