/**
 * TLS session resumption across a restart: the ticket keys come from the master
 * key, so a device that reconnects to the restarted node (the reconnect storm)
 * resumes its session instead of a full handshake, on the TLS and the
 * mutual-TLS listener, and is still identified by its certificate there.
 */
import type { TLSSocket } from 'node:tls'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { ticketKeysAt } from '../src/broker/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { publishAcked, startTestNode, tempDir } from './support/node.ts'

const alarms = createAlarmModel(6)

/**
 * Connects; after a full handshake, resolves once a session ticket from the server has arrived too
 * (a resumed session keeps the ticket it came with: OpenSSL issues none then).
 */
async function connectWithTicket (opts: IClientOptions): Promise<{ client: MqttClient; session: Buffer; reused: boolean }> {
  const client = mqtt.connect({ reconnectPeriod: 0, connectTimeout: 5000, ...opts })
  const stream = client.stream as TLSSocket
  let session: Buffer | undefined
  stream.on('session', (s: Buffer) => { session = s })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { resolve() })
    client.once('error', reject)
  })
  const reused = stream.isSessionReused()
  if (reused) return { client, session: (opts as { session: Buffer }).session, reused }
  for (let i = 0; i < 100 && session === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  if (session === undefined) throw new Error('no session ticket from the server')
  return { client, session, reused }
}

describe('TLS session resumption', () => {
  let dir: ReturnType<typeof tempDir>
  let node: IngestNode
  let device: Enrollment
  let certified: Enrollment
  let issued: { certPem: string; keyPem?: string | undefined }

  beforeAll(async () => {
    dir = tempDir()
    node = await startTestNode(dir.path)
    await node.registry.createTenant('care-tr', 'TR')
    device = await node.registry.enrollDevice({ tenant: 'care-tr', device: 'cal-tr0', family: 'calarm', patient: null })
    certified = await node.registry.enrollDevice({ tenant: 'care-tr', device: 'cal-tr1', family: 'calarm', patient: null })
    issued = await node.registry.issueCertificate('care-tr', certified.device)
  }, 60_000)
  afterAll(async () => {
    await node?.close()
    dir?.remove()
  })

  const tlsOpts = (): IClientOptions => ({
    protocol: 'mqtts', host: '127.0.0.1', port: node.mqtts.port, ca: node.caPem!, servername: 'localhost',
    clientId: device.device, username: device.device, password: device.secret,
  })
  const mtlsOpts = (): IClientOptions => ({
    protocol: 'mqtts', host: '127.0.0.1', port: node.mqttsMutual!.port, ca: node.caPem!, servername: 'localhost',
    clientId: certified.device, key: issued.keyPem!, cert: issued.certPem,
  })
  const publishes = async (c: MqttClient, e: Enrollment): Promise<boolean> => {
    const sealer = new DeviceSealer({ tenant: e.tenant, device: e.device, keyId: 1, key: Buffer.from(e.key, 'base64url') })
    const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
    return await publishAcked(c, topic, frame)
  }

  it('resumes a session the node issued before it restarted, with a password and with a client certificate', async () => {
    const first = await connectWithTicket(tlsOpts())
    const firstMutual = await connectWithTicket(mtlsOpts())
    expect([first.reused, firstMutual.reused]).toEqual([false, false])
    await first.client.endAsync()
    await firstMutual.client.endAsync()

    await node.close()
    node = await startTestNode(dir.path)
    const again = await connectWithTicket({ ...tlsOpts(), session: first.session } as IClientOptions)
    const againMutual = await connectWithTicket({ ...mtlsOpts(), session: firstMutual.session } as IClientOptions)
    expect([again.reused, againMutual.reused]).toEqual([true, true])
    // a resumed mutual-TLS session still names its device: the CONNECT was accepted for it and it publishes
    expect(await publishes(again.client, device)).toBe(true)
    expect(await publishes(againMutual.client, certified)).toBe(true)
    await again.client.endAsync()
    await againMutual.client.endAsync()
  }, 60_000)

  it('keeps accepting tickets after a certificate reload', async () => {
    const first = await connectWithTicket(tlsOpts())
    await first.client.endAsync()
    node.reloadTls()
    const again = await connectWithTicket({ ...tlsOpts(), session: first.session } as IClientOptions)
    expect(again.reused).toBe(true)
    await again.client.endAsync()
  })

  it('derives one key per day from the master key: the same within a day, another the next day', () => {
    const key = Buffer.alloc(32, 7)
    const day = Date.UTC(2026, 11, 1)
    expect(ticketKeysAt(key, day + 1000)).toEqual(ticketKeysAt(key, day + 86_399_000))
    expect(ticketKeysAt(key, day)).not.toEqual(ticketKeysAt(key, day + 86_400_000))
    expect(ticketKeysAt(key, day)).not.toEqual(ticketKeysAt(Buffer.alloc(32, 8), day))
    expect(ticketKeysAt(key, day)).toHaveLength(48)
  })
})
