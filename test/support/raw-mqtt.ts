/** Hand-built MQTT packets (3.1.1 unless said) for tests that must misbehave in ways a real client library will not. */
import { once } from 'node:events'
import { connect as netConnect, type Socket } from 'node:net'

export function varint (n: number): Buffer {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return Buffer.from(out)
}

function str (s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

export function connectPacket (o: { clientId: string; username?: string; password?: string; clean?: boolean; keepalive?: number }): Buffer {
  let flags = o.clean === false ? 0 : 0x02
  const payload = [str(o.clientId)]
  if (o.username !== undefined) { flags |= 0x80; payload.push(str(o.username)) }
  if (o.password !== undefined) { flags |= 0x40; payload.push(str(o.password)) }
  const keep = Buffer.alloc(2)
  keep.writeUInt16BE(o.keepalive ?? 30)
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, flags]), keep, ...payload])
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body])
}

export function publishPacket (topic: string, payload: Buffer, qos: 0 | 1 | 2 = 1, id = 1): Buffer {
  const parts = [str(topic)]
  if (qos > 0) { const m = Buffer.alloc(2); m.writeUInt16BE(id); parts.push(m) }
  const body = Buffer.concat([...parts, payload])
  return Buffer.concat([Buffer.from([0x30 | (qos << 1)]), varint(body.length), body])
}

export async function rawSocket (port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  const s = netConnect({ host: '127.0.0.1', port, localAddress })
  await once(s, 'connect')
  return s
}

/** Sends a CONNECT and resolves with the CONNACK return code, or 'closed' if the broker hung up first. */
export async function connack (socket: Socket, packet: Buffer): Promise<number | 'closed'> {
  return await new Promise((resolve) => {
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      if (buf.length >= 4 && buf[0] === 0x20) { cleanup(); resolve(buf[3]!) }
    }
    const onClose = (): void => { cleanup(); resolve('closed') }
    const cleanup = (): void => { socket.off('data', onData); socket.off('close', onClose) }
    socket.on('data', onData)
    socket.on('close', onClose)
    socket.on('error', () => {})
    socket.write(packet)
  })
}
