/**
 * Device secrets are 256 random bits stored as HMAC-SHA-256 under a pepper from
 * the master key: a CONNECT costs a MAC on the node's thread, not an scrypt on a
 * hash thread. A secret stored as scrypt by an earlier version still works, once
 * through the hash threads, and is replaced by its keyed hash on that CONNECT
 * (read back from the store, across restarts).
 */
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { devicePepper, deviceSecretHash, hashSecret, verifyDeviceSecret, type Enrollment } from '../src/registry/index.ts'
import { connack, connectPacket, rawSocket } from './support/raw-mqtt.ts'
import { rowsOf, startTestNode, tempDir } from './support/node.ts'

describe('keyed device-secret hash', () => {
  it('matches its own device and secret under its own pepper, and nothing else', () => {
    const text = fc.string({ minLength: 1, maxLength: 64 })
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), text, text, text, text, (key, device, secret, otherDevice, otherSecret) => {
      const pepper = devicePepper(key)
      const stored = deviceSecretHash(pepper, device, secret)
      expect(verifyDeviceSecret(pepper, device, secret, stored)).toBe(true)
      if (otherSecret !== secret) expect(verifyDeviceSecret(pepper, device, otherSecret, stored)).toBe(false)
      // a hash copied onto another device's row matches nothing there
      if (otherDevice !== device) expect(verifyDeviceSecret(pepper, otherDevice, secret, stored)).toBe(false)
      expect(verifyDeviceSecret(devicePepper(randomBytes(32)), device, secret, stored)).toBe(false)
    }), { numRuns: 200 })
  })

  it('matches nothing against a malformed or foreign stored value', () => {
    const pepper = devicePepper(randomBytes(32))
    for (const stored of ['', 'hmac-sha256$', 'hmac-sha256$AAAA', 'scrypt$1024$8$1$AAAA$AAAA', 'x'.repeat(100)]) {
      expect(verifyDeviceSecret(pepper, 'd', 's', stored)).toBe(false)
    }
  })
})

describe('device secrets on a node', () => {
  let dir: ReturnType<typeof tempDir>
  let node: IngestNode
  let fresh: Enrollment
  let legacy: Enrollment

  const storedHash = async (device: string): Promise<string> =>
    (await rowsOf<{ h: string }>(node, 'SELECT argMax(secret_hash, updated_at) AS h FROM {db}.devices WHERE device_id = {d:String}', { d: device }))[0]!.h
  const login = async (device: string, password: string): Promise<number | 'closed'> => {
    const s = await rawSocket(node.mqtt!.port)
    const code = await connack(s, connectPacket({ clientId: device, username: device, password }))
    s.destroy()
    return code
  }
  const restart = async (): Promise<void> => {
    await node.close()
    node = await startTestNode(dir.path)
  }

  beforeAll(async () => {
    dir = tempDir()
    node = await startTestNode(dir.path)
    await node.registry.createTenant('care-ds', 'DS')
    fresh = await node.registry.enrollDevice({ tenant: 'care-ds', device: 'cal-ds-new', family: 'calarm', patient: null })
    legacy = await node.registry.enrollDevice({ tenant: 'care-ds', device: 'cal-ds-old', family: 'calarm', patient: null })
    // what an earlier version stored: the secret as scrypt (a later row of the ReplacingMergeTree wins)
    const scrypt = await hashSecret(node.hasher, legacy.secret, 10)
    await node.storage.conn.client.insert({
      table: node.storage.conn.table('devices'), format: 'JSONEachRow',
      values: [{ tenant_id: 'care-ds', device_id: legacy.device, family: 'calarm', patient_id: '', secret_hash: scrypt, gateway_id: '', updated_at: Date.now() + 1 }],
    })
    await restart()
  }, 60_000)
  afterAll(async () => {
    await node?.close()
    dir?.remove()
  })

  it('issues 256-bit secrets and stores only their keyed hash', async () => {
    expect(Buffer.from(fresh.secret, 'base64url')).toHaveLength(32)
    const h = await storedHash(fresh.device)
    expect(h).toMatch(/^hmac-sha256\$[A-Za-z0-9_-]{43}$/)
    expect(h).not.toContain(fresh.secret)
  })

  it('checks keyed secrets without the hash threads: right, wrong and unknown devices alike', async () => {
    const before = node.hasher.stats().completed
    expect(await login(fresh.device, fresh.secret)).toBe(0)
    expect(await login(fresh.device, 'wrong')).toBe(4)
    expect(await login('cal-ds-nobody', fresh.secret)).toBe(4)
    expect(node.hasher.stats().completed - before).toBe(0)
  })

  it('takes a secret stored as scrypt once, through the hash threads, and stores its keyed hash instead', async () => {
    expect(await storedHash(legacy.device)).toMatch(/^scrypt\$/)
    const before = node.hasher.stats().completed
    // a wrong secret is checked with scrypt and changes nothing
    expect(await login(legacy.device, 'wrong')).toBe(4)
    expect(await storedHash(legacy.device)).toMatch(/^scrypt\$/)
    expect(await login(legacy.device, legacy.secret)).toBe(0)
    expect(node.hasher.stats().completed - before).toBe(2)
    expect(node.registry.secretsMigrated).toBe(1)
    const keyed = await storedHash(legacy.device)
    expect(keyed).toMatch(/^hmac-sha256\$/)
    // from now on a MAC, here and after a restart (read back from the store)
    expect(await login(legacy.device, legacy.secret)).toBe(0)
    expect(node.hasher.stats().completed - before).toBe(2)
    await restart()
    expect(await storedHash(legacy.device)).toBe(keyed)
    const afterRestart = node.hasher.stats().completed
    expect(await login(legacy.device, legacy.secret)).toBe(0)
    expect(await login(legacy.device, 'wrong')).toBe(4)
    expect(node.hasher.stats().completed).toBe(afterRestart)
    expect(node.registry.secretsMigrated).toBe(0)
  }, 60_000)
})
