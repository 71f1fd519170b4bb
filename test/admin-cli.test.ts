/** `npm run admin` as a user runs it: a child process talking to a running node's admin API. */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createAdminClient } from '../src/api/index.ts'
import { connectTls, count, rowsOf, startTestNode, tempDir } from './support/node.ts'

const run = promisify(execFile)
let dir: ReturnType<typeof tempDir>
let node: IngestNode

async function admin (...args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/admin-cli.ts', ...args], {
    env: { ...process.env, VF_DATA_DIR: dir.path, VF_HTTP_PORT: String(node.http.port) },
  })
  return JSON.parse(stdout)
}

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
})
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('admin CLI', () => {
  it('creates a tenant and patient, records consent, enrolls a device that can then connect', async () => {
    expect(await admin('tenant', 'create', 'care-cli', '--name', 'Care CLI')).toEqual({ tenant: 'care-cli' })
    expect(await admin('patient', 'create', 'care-cli', 'p-1')).toEqual({ patient: 'p-1' })
    expect(await admin('consent', 'grant', 'care-cli', 'p-1', 'vitals', '--by', 'nurse-1', '--source', 'professional')).toMatchObject({ version: 1 })
    expect(await admin('consent', 'withdraw', 'care-cli', 'p-1', 'vitals', '--by', 'nurse-1')).toMatchObject({ version: 2 })
    const e = await admin('device', 'enroll', 'care-cli', 'cal-1', '--family', 'calarm', '--patient', 'p-1') as { secret: string; key: string }
    expect(e.secret.length).toBeGreaterThan(20)
    expect(Buffer.from(e.key, 'base64url')).toHaveLength(32)
    expect(await admin('device', 'list', 'care-cli')).toEqual({
      devices: [{ device: 'cal-1', family: 'calarm', patient: 'p-1', bound: true, gateway: null, lastSeenAt: null, battery: null, firmware: null, lastStatusAt: null, keyId: 1, certificateNotAfter: null, revokedAt: null }],
      next: null, total: 1,
    })
    const c = await connectTls(node, 'cal-1', e.secret)
    await c.endAsync()
    expect(await admin('device', 'bind', 'care-cli', 'cal-1', 'none')).toEqual({ bound: 'none' })
    expect(node.registry.device('cal-1')?.patient).toBeNull()
    expect(await admin('device', 'rotate-key', 'care-cli', 'cal-1', '--overlap', '60')).toMatchObject({ keyId: 2 })
    expect(await admin('device', 'cert', 'care-cli', 'cal-1')).toMatchObject({ certPem: expect.stringContaining('BEGIN CERTIFICATE') })
    expect(await admin('security-events', 'care-cli')).toEqual([])
    // the consent log holds both events, in order; the stored secret is a hash, not the secret
    expect(await count(node, 'consent_events', "tenant_id = 'care-cli' AND patient_id = 'p-1'")).toBe(2)
    expect(await count(node, 'devices', 'position(secret_hash, {s:String}) > 0', { s: e.secret })).toBe(0)
  }, 60_000)

  it('exercises the data-subject rights: register, retention, hold, report, export, erasure with receipt', async () => {
    await admin('patient', 'create', 'care-cli', 'p-2')
    const register = await admin('rights', 'register', 'care-cli') as Array<{ purpose: string; categories: Array<{ category: string; basis: string }> }>
    expect(register.find((a) => a.purpose === 'care')!.categories).toContainEqual(expect.objectContaining({ category: 'alarm_events', basis: 'contract' }))
    expect(await admin('rights', 'retention', 'care-cli', 'device_diagnostics', '400')).toEqual({ category: 'device_diagnostics', days: 400 })
    await expect(admin('rights', 'retention', 'care-cli', 'device_diagnostics', '1')).rejects.toThrow(/400/)
    expect(await admin('rights', 'hold', 'care-cli', 'p-2', '--reason', 'case 7')).toEqual({ legalHold: true })
    await expect(admin('rights', 'erase', 'care-cli', 'p-2')).rejects.toThrow(/409.*ING_ERR_HELD/)
    expect(await admin('rights', 'unhold', 'care-cli', 'p-2', '--reason', 'closed')).toEqual({ legalHold: false })
    expect(await admin('rights', 'report', 'care-cli', 'p-2')).toMatchObject({ patient: 'p-2', legalHold: false, accessedBy: expect.arrayContaining([expect.objectContaining({ user: 'platform-admin', action: 'legal_hold' })]) })
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/admin-cli.ts', 'rights', 'export', 'care-cli', 'p-2', '--format', 'fhir'], {
      env: { ...process.env, VF_DATA_DIR: dir.path, VF_HTTP_PORT: String(node.http.port) },
    })
    expect(JSON.parse(stdout)).toMatchObject({ resourceType: 'Bundle', type: 'collection' })
    const receipt = await admin('rights', 'erase', 'care-cli', 'p-2') as { receiptId: string }
    expect(await admin('rights', 'receipts', 'care-cli')).toContainEqual(expect.objectContaining({ receipt_id: receipt.receiptId }))
    expect(node.registry.hasPatient('care-cli', 'p-2')).toBe(false)
  }, 60_000)

  it('records a guardian\'s grant through the rights route: in the consent log and in the access log, by who recorded it', async () => {
    await admin('patient', 'create', 'care-cli', 'p-minor')
    expect(await admin('consent', 'grant', 'care-cli', 'p-minor', 'vitals', '--by', 'nurse-2', '--source', 'guardian')).toMatchObject({ version: 1, erasure: null })
    const events = await rowsOf(node, `SELECT purpose, category, toString(action) AS action, source, recorded_by, version FROM {db}.consent_events
      WHERE tenant_id = 'care-cli' AND patient_id = 'p-minor'`)
    expect(events).toEqual([{ purpose: 'care', category: 'vitals', action: 'grant', source: 'guardian', recorded_by: 'nurse-2', version: 1 }])
    const audit = await rowsOf(node, `SELECT user_id, role, action, detail FROM {db}.access_log WHERE tenant_id = 'care-cli' AND patient_id = 'p-minor'`)
    expect(audit).toEqual([{ user_id: 'platform-admin', role: 'platform_admin', action: 'consent_grant', detail: 'care/vitals source=guardian' }])
    // a source the schema does not know is refused, and nothing is recorded
    await expect(admin('consent', 'grant', 'care-cli', 'p-minor', 'vitals', '--by', 'nurse-2', '--source', 'neighbour')).rejects.toThrow(/400.*ING_ERR_INVALID.*source/)
    expect(await count(node, 'consent_events', "tenant_id = 'care-cli' AND patient_id = 'p-minor'")).toBe(1)
    // one way to record consent: the tenant-level admin endpoint that refused guardians is gone
    const api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
    await expect(api.request('POST', '/admin/tenants/care-cli/consent', { patient: 'p-minor', category: 'vitals', action: 'grant', recordedBy: 'x' })).rejects.toThrow(/404/)
  }, 60_000)

  it('fails with a clear message for an unknown tenant', async () => {
    await expect(admin('patient', 'create', 'nope', 'p-1')).rejects.toThrow(/404/)
  })
})
