/**
 * Bulk enrolment: the file parser (property tests), the plan's rules (isolation
 * between tenants, idempotency, all or nothing), and imports into a real node,
 * read back from the store and used by real MQTT devices, across a restart.
 */
import { execFile } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createAdminClient } from '../src/api/index.ts'
import { FAMILIES, parseImport, planImport, type Family, type ImportItem } from '../src/registry/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import { connectTls, count, publishAcked, rowsOf, startTestNode, tempDir } from './support/node.ts'

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/)
// a new device may not be named like a property of every JavaScript object (src/ids.ts); fast-check likes to try those
const newDevice = id.filter((s) => !Object.hasOwn(Object.prototype, s))
const line = fc.record({ device: newDevice, family: fc.constantFrom(...FAMILIES), patient: fc.option(id, { nil: null }), gateway: fc.option(id, { nil: null }) })

type Row = Omit<ImportItem, 'line'>

function ndjson (rows: Row[]): string {
  return rows.map((r) => JSON.stringify({ device: r.device, family: r.family, ...(r.patient === null ? {} : { patient: r.patient }), ...(r.gateway === null ? {} : { gateway: r.gateway }) })).join('\n')
}
function csv (rows: Row[]): string {
  return ['device,family,patient,gateway', ...rows.map((r) => `${r.device},${r.family},${r.patient ?? ''},${r.gateway ?? ''}`)].join('\r\n')
}

describe('import file parser', () => {
  it('reads back every line of a well-formed NDJSON or CSV file, numbered as an editor numbers them', () => {
    fc.assert(fc.property(fc.array(line, { maxLength: 30 }), fc.boolean(), (rows, asCsv) => {
      const parsed = parseImport(asCsv ? csv(rows) : ndjson(rows), asCsv ? 'csv' : 'ndjson')
      expect(parsed.errors).toEqual([])
      expect(parsed.items).toEqual(rows.map((r, i) => ({ ...r, line: i + (asCsv ? 2 : 1) })))
    }))
  })

  it('refuses a device named like a property of every JavaScript object (the broker keys clients by it)', () => {
    const parsed = parseImport('device,family\r\nconstructor,calarm\r\n__proto__,calarm\r\nok-1,calarm', 'csv')
    expect(parsed.errors.map((e) => e.line)).toEqual([2, 3])
    expect(parsed.items.map((i) => i.device)).toEqual(['ok-1'])
  })

  it('never throws on arbitrary text; a line it cannot read is an error with its number, and the good lines are still read', () => {
    fc.assert(fc.property(fc.array(fc.oneof(line.map((r) => ndjson([r])), fc.string({ maxLength: 80 }).map((s) => s.replace(/\n/g, ' '))), { maxLength: 20 }), (texts) => {
      const parsed = parseImport(texts.join('\n'), 'ndjson')
      const numbered = [...parsed.items.map((i) => i.line), ...parsed.errors.map((e) => e.line)].sort((a, b) => a - b)
      const nonBlank = texts.map((t, i) => ({ t, line: i + 1 })).filter((x) => x.t.trim() !== '').map((x) => x.line)
      expect(numbered).toEqual(nonBlank)
    }))
    expect(() => parseImport('\u0000{{{', 'csv')).not.toThrow()
  })

  it('names what is wrong: bad ids, an unknown family, unknown fields, a CSV without its header, a row with the wrong field count', () => {
    const bad = parseImport(['{"device":"a b","family":"calarm"}', '{"device":"d2","family":"toaster"}', '{"device":"d3","family":"calarm","name":"Jan"}', '[1]'].join('\n'), 'ndjson')
    expect(bad.errors.map((e) => [e.line, e.message.split(':')[0]])).toEqual([[1, 'device'], [2, 'family'], [3, 'unknown field name'], [4, 'not a JSON object']])
    expect(parseImport('d1,calarm', 'csv').errors[0]!.message).toMatch(/header line/)
    expect(parseImport('device,family\nd1,calarm,extra', 'csv').errors[0]).toMatchObject({ line: 2, message: '3 fields, the header has 2' })
    expect(parseImport(Array.from({ length: 200_001 }, (_, i) => `{"device":"d${i}","family":"calarm"}`).join('\n'), 'ndjson').errors[0]!.code).toBe('ING_ERR_TOO_LARGE')
  })
})

describe('import plan', () => {
  it('never enrols or reports as unchanged a device id another tenant holds', () => {
    fc.assert(fc.property(fc.array(line, { minLength: 1, maxLength: 20 }), fc.array(id, { maxLength: 10 }), (rows, foreign) => {
      const items = rows.map((r, i) => ({ ...r, patient: null, gateway: null, line: i + 1 }))
      const taken = new Set([...foreign, items[0]!.device])
      const plan = planImport('care-a', items, {
        hasPatient: () => true,
        device: (d) => taken.has(d) ? { tenant: 'care-b', family: 'calarm' as Family, patient: null, gateway: null } : undefined,
        enrolling: () => false,
      })
      for (const it of [...plan.enrol, ...plan.unchanged]) expect(taken.has(it.device)).toBe(false)
      expect(plan.errors.filter((e) => e.code === 'ING_ERR_CONFLICT').every((e) => e.message === 'device id already enrolled')).toBe(true)
      expect(plan.errors.some((e) => e.line === 1)).toBe(true)
    }))
  })
})

describe('bulk enrolment into a node', () => {
  let dir: ReturnType<typeof tempDir>
  let node: IngestNode
  const alarms = createAlarmModel(4)
  const N = 1000

  beforeAll(async () => {
    dir = tempDir()
    node = await startTestNode(dir.path)
    await node.registry.createTenant('care-im', 'IM')
    await node.registry.createTenant('care-other', 'Other')
    await node.registry.createPatient('care-im', 'p-im1')
    await node.registry.enrollDevice({ tenant: 'care-other', device: 'cal-taken', family: 'calarm', patient: null })
  }, 60_000)
  afterAll(async () => {
    await node?.close()
    dir?.remove()
  })

  const file = (n: number, from = 0): string => ndjson([
    { device: 'gw-im0', family: 'gateway', patient: null, gateway: null },
    ...Array.from({ length: n }, (_, i): Row => ({ device: `brc-im${from + i}`, family: 'bracelet', patient: i === 0 ? 'p-im1' : null, gateway: 'gw-im0' })),
  ])
  const deviceRows = async (): Promise<number> => await count(node, 'devices FINAL', "tenant_id = 'care-im'")

  it('enrols a thousand devices in one request: stored, keyed, and each can connect and publish with what it was given', async () => {
    const parsed = parseImport(file(N), 'ndjson')
    const r = await node.registry.importDevices('care-im', parsed.items)
    expect(r.applied).toBe(true)
    expect(r.errors).toEqual([])
    expect(r.enrolled).toHaveLength(N + 1)
    expect(await deviceRows()).toBe(N + 1)
    expect(await count(node, 'device_keys', "tenant_id = 'care-im'")).toBe(N + 1)
    const stored = await rowsOf<{ device_id: string; patient_id: string; gateway_id: string; secret_hash: string }>(node,
      "SELECT device_id, patient_id, gateway_id, secret_hash FROM {db}.devices FINAL WHERE tenant_id = 'care-im' AND device_id IN ('brc-im0', 'brc-im1')  ORDER BY device_id")
    expect(stored.map((s) => [s.device_id, s.patient_id, s.gateway_id])).toEqual([['brc-im0', 'p-im1', 'gw-im0'], ['brc-im1', '', 'gw-im0']])
    expect(stored.every((s) => s.secret_hash.startsWith('hmac-sha256$'))).toBe(true)
    const gw = r.enrolled.find((e) => e.device === 'gw-im0')!
    const c = await connectTls(node, gw.device, gw.secret)
    expect(c.connected).toBe(true)
    await c.endAsync()
  }, 120_000)

  it('changes nothing when the same file is sent again: every line unchanged, no new secret', async () => {
    const before = await rowsOf<{ n: string }>(node, "SELECT count() AS n FROM {db}.devices WHERE tenant_id = 'care-im'")
    const r = await node.registry.importDevices('care-im', parseImport(file(N), 'ndjson').items)
    expect(r).toMatchObject({ applied: true, enrolled: [], errors: [] })
    expect(r.unchanged).toHaveLength(N + 1)
    expect(await rowsOf<{ n: string }>(node, "SELECT count() AS n FROM {db}.devices WHERE tenant_id = 'care-im'")).toEqual(before)
  })

  it('applies nothing from a file with a bad line, and reports every bad line', async () => {
    const before = await deviceRows()
    const text = [
      ndjson(Array.from({ length: 10 }, (_, i): Row => ({ device: `cal-new${i}`, family: 'calarm', patient: null, gateway: null }))),
      ndjson([{ device: 'cal-new3', family: 'calarm', patient: null, gateway: null }]),
      ndjson([{ device: 'cal-x', family: 'calarm', patient: 'p-unknown', gateway: null }]),
      ndjson([{ device: 'cal-taken', family: 'calarm', patient: null, gateway: null }]),
      ndjson([{ device: 'brc-im1', family: 'bracelet', patient: 'p-im1', gateway: 'gw-im0' }]),
    ].join('\n')
    const r = await node.registry.importDevices('care-im', parseImport(text, 'ndjson').items)
    expect(r.applied).toBe(false)
    expect(r.enrolled).toEqual([])
    expect(r.errors.map((e) => [e.line, e.code])).toEqual([[11, 'ING_ERR_INVALID'], [12, 'ING_ERR_NOT_FOUND'], [13, 'ING_ERR_CONFLICT'], [14, 'ING_ERR_CONFLICT']])
    expect(r.errors[0]!.message).toBe('device id already on line 4')
    // another tenant's device: only that the id is taken, nothing about it
    expect(r.errors[2]!.message).toBe('device id already enrolled')
    expect(await deviceRows()).toBe(before)
    expect(node.registry.device('cal-new0')).toBeUndefined()
  })

  it('keeps imported devices across a restart: a device connects with its one-time secret and its alarm is stored', async () => {
    const r = await node.registry.importDevices('care-im', parseImport('device,family\ncal-im-a,calarm\ncal-im-b,calarm', 'csv').items)
    expect(r.applied).toBe(true)
    await node.close()
    node = await startTestNode(dir.path)
    const e = r.enrolled.find((x) => x.device === 'cal-im-b')!
    const c = await connectTls(node, e.device, e.secret)
    const sealer = new DeviceSealer({ tenant: e.tenant, device: e.device, keyId: e.keyId, key: Buffer.from(e.key, 'base64url') })
    const { topic, frame } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
    expect(await publishAcked(c, topic, frame)).toBe(true)
    await c.endAsync()
    expect(await count(node, 'alarm_events', "device_id = 'cal-im-b'")).toBe(1)
    expect(await count(node, 'devices FINAL', "tenant_id = 'care-im'")).toBe(N + 3)
  }, 60_000)
})

describe('bulk enrolment over the admin API and the CLI', () => {
  let dir: ReturnType<typeof tempDir>
  let node: IngestNode
  const run = promisify(execFile)

  beforeAll(async () => {
    dir = tempDir()
    node = await startTestNode(dir.path)
    await node.registry.createTenant('care-api', 'API')
  }, 60_000)
  afterAll(async () => {
    await node?.close()
    dir?.remove()
  })

  const api = (): ReturnType<typeof createAdminClient> => createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)

  it('takes a CSV body, answers the one-time secrets, and refuses a bad file with its line numbers (422), a wrong type (400), an oversized body (413)', async () => {
    const csvFile = ['device,family', ...Array.from({ length: 50 }, (_, i) => `cal-api${i},calarm`)].join('\n')
    const ok = await api().upload<{ applied: boolean; enrolled: Array<{ device: string; secret: string }> }>('/admin/tenants/care-api/devices:import', 'text/csv', csvFile)
    expect(ok.status).toBe(200)
    expect(ok.body.enrolled.map((e) => e.device)).toEqual(Array.from({ length: 50 }, (_, i) => `cal-api${i}`))
    const c = await connectTls(node, 'cal-api7', ok.body.enrolled[7]!.secret)
    await c.endAsync()
    const bad = await api().upload<{ applied: boolean; errors: Array<{ line: number }> }>('/admin/tenants/care-api/devices:import', 'application/x-ndjson', '{"device":"cal-b1","family":"calarm"}\n{"device":"cal-b2"}\nnot json')
    expect(bad.status).toBe(422)
    expect(bad.body.errors.map((e) => e.line)).toEqual([2, 3])
    expect(node.registry.device('cal-b1')).toBeUndefined()
    const plain = await api().upload<{ error: string; message: string }>('/admin/tenants/care-api/devices:import', 'text/plain', 'device,family')
    expect([plain.status, plain.body.error]).toEqual([400, 'ING_ERR_INVALID'])
    expect(plain.body.message).toMatch(/text\/csv/)
    const huge = 'x'.repeat(33 * 1024 * 1024)
    expect((await api().upload('/admin/tenants/care-api/devices:import', 'text/csv', huge)).status).toBe(413)
    expect((await api().upload('/admin/tenants/nobody/devices:import', 'text/csv', csvFile)).status).toBe(404)
  }, 60_000)

  it('`npm run admin -- device import` writes the secrets file (owner-only), reports bad lines by file and line, and enrols nothing then', async () => {
    const file = join(dir.path, 'rollout.ndjson')
    const out = join(dir.path, 'secrets.ndjson')
    writeFileSync(file, Array.from({ length: 20 }, (_, i) => JSON.stringify({ device: `brc-cli${i}`, family: 'bracelet' })).join('\n'))
    const cli = async (...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> =>
      await run(process.execPath, ['--import', 'tsx', 'src/admin-cli.ts', ...args], { env: { ...process.env, VF_DATA_DIR: dir.path, VF_HTTP_PORT: String(node.http.port) } })
        .then((r) => ({ ...r, code: 0 }), (err: unknown) => { const e = err as { stdout: string; stderr: string; code: number }; return { stdout: e.stdout, stderr: e.stderr, code: e.code } })
    const r = await cli('device', 'import', 'care-api', file, '--out', out)
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ enrolled: 20, unchanged: 0, secrets: out })
    expect(statSync(out).mode & 0o777).toBe(0o600)
    const secrets = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { device: string; secret: string; key: string })
    expect(secrets.map((e) => e.device)).toEqual(Array.from({ length: 20 }, (_, i) => `brc-cli${i}`))
    const c = await connectTls(node, secrets[3]!.device, secrets[3]!.secret)
    await c.endAsync()
    // again: nothing new, no secrets
    expect(JSON.parse((await cli('device', 'import', 'care-api', file, '--out', out)).stdout)).toMatchObject({ enrolled: 0, unchanged: 20 })
    writeFileSync(file, '{"device":"brc-cli-x","family":"bracelet"}\n{"device":"brc-cli-y","family":"bracelet","patient":"p-nope"}\n')
    const bad = await cli('device', 'import', 'care-api', file, '--out', out)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain(`${file}:2: patient not registered with this tenant`)
    expect(node.registry.device('brc-cli-x')).toBeUndefined()
  }, 120_000)
})
