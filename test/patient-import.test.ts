/**
 * A list of patients with their consent grants, registered through the admin
 * API in one request on a real node (chDB in a temp dir): the rows are read
 * back from the store, the grants take effect for the very next message of a
 * real MQTT device, each patient gets an access-log row, a list sent again
 * changes nothing, and a list with a bad id writes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AdminApiError, createAdminClient, type AdminClient } from '../src/api/index.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createSpotModel } from '../devices/index.ts'
import { ConsentIndex, POLICY } from '../src/consent/index.ts'
import type { TenantId } from '../src/ids.ts'
import { importPatients } from '../src/registry/patient-import.ts'
import { count, enrollAndConnect, publishAcked, rowsOf, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let api: AdminClient
const T = 'care-imp'

beforeAll(async () => {
  dir = tempDir('vf-patients-')
  node = await startTestNode(dir.path)
  api = createAdminClient(`http://127.0.0.1:${node.http.port}`, node.adminToken)
  await api.request('POST', '/admin/tenants', { tenant: T, displayName: 'Import' })
}, 60_000)

afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('patient import', () => {
  it('registers patients and their grants in one request, effective for the next message, and idempotent', async () => {
    const validFromMs = Date.now() - 86_400_000
    const body = {
      recordedBy: 'nurse-7', source: 'paper_form',
      patients: [
        { patient: 'imp-1', grants: [{ category: 'spot_measurements', validFromMs }, { category: 'vitals', validFromMs }] },
        { patient: 'imp-2', grants: [{ category: 'spot_measurements', validFromMs }] },
        { patient: 'imp-3' },
      ],
    }
    expect(await api.request('POST', `/admin/tenants/${T}/patients:import`, body)).toEqual({ created: 3, unchanged: 0, grants: 3 })
    const patients = await rowsOf<{ p: string }>(node, 'SELECT patient_id AS p FROM {db}.patients WHERE tenant_id = {t:String} ORDER BY p', { t: T })
    expect(patients.map((r) => r.p)).toEqual(['imp-1', 'imp-2', 'imp-3'])
    const events = await rowsOf<{ p: string; category: string; version: number; by: string; source: string; from: string }>(node,
      `SELECT patient_id AS p, category, version, recorded_by AS by, source, toString(toUnixTimestamp64Milli(valid_from)) AS from
       FROM {db}.consent_events WHERE tenant_id = {t:String} ORDER BY p, version`, { t: T })
    expect(events).toEqual([
      { p: 'imp-1', category: 'spot_measurements', version: 1, by: 'nurse-7', source: 'paper_form', from: String(validFromMs) },
      { p: 'imp-1', category: 'vitals', version: 2, by: 'nurse-7', source: 'paper_form', from: String(validFromMs) },
      { p: 'imp-2', category: 'spot_measurements', version: 1, by: 'nurse-7', source: 'paper_form', from: String(validFromMs) },
    ])
    expect(await count(node, 'access_log', "tenant_id = {t:String} AND action = 'consent_import'", { t: T })).toBe(3)

    // in force at once: a spot measurement of imp-2 is stored, one of imp-3 (no grant) is filtered
    for (const p of ['imp-2', 'imp-3']) {
      const kit = await enrollAndConnect(node, T, `cvk-${p}`, 'cvitals', p)
      const { topic, frame } = kit.sealer.seal('spot', createSpotModel(1).next(Date.now() - 60_000))
      expect(await publishAcked(kit.client, topic, frame)).toBe(true)
      await kit.client.endAsync()
    }
    const stored = await rowsOf<{ p: string }>(node, 'SELECT patient_id AS p FROM {db}.spot_measurements WHERE tenant_id = {t:String}', { t: T })
    expect(stored.map((r) => r.p)).toEqual(['imp-2'])

    // sent again: nothing new
    expect(await api.request('POST', `/admin/tenants/${T}/patients:import`, body)).toEqual({ created: 0, unchanged: 3, grants: 0 })
    expect(await count(node, 'consent_events', 'tenant_id = {t:String}', { t: T })).toBe(3)
  })

  it('writes nothing from a list with an id that does not parse', async () => {
    const err = await api.request('POST', `/admin/tenants/${T}/patients:import`, {
      recordedBy: 'nurse-7', patients: [{ patient: 'imp-ok-9', grants: [{ category: 'vitals' }] }, { patient: 'bad id with spaces' }],
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AdminApiError)
    expect((err as AdminApiError).status).toBe(400)
    expect(await count(node, 'patients', "patient_id = 'imp-ok-9'")).toBe(0)
    expect(await count(node, 'consent_events', "patient_id = 'imp-ok-9'")).toBe(0)
  })

  it('hands what it stored to the change feed (several nodes), the patients before their grants', async () => {
    const fed: Array<{ table: string; patients: string[] }> = []
    const r = await importPatients({
      conn: node.storage.conn, consent: new ConsentIndex(POLICY), tenant: T as TenantId, has: () => false, note: () => {},
      replicate: async (table, rows) => { fed.push({ table, patients: rows.map((x) => String(x['patient_id'])) }) },
    }, [{ patient: 'imp-fed-1', grants: [{ category: 'vitals' }, { category: 'sleep' }] }, { patient: 'imp-fed-2' }], { recordedBy: 'nurse-7', source: 'list' })
    expect(r).toEqual({ created: 2, unchanged: 0, grants: 2 })
    expect(fed).toEqual([{ table: 'patients', patients: ['imp-fed-1', 'imp-fed-2'] }, { table: 'consent_events', patients: ['imp-fed-1', 'imp-fed-1'] }])
  })
})
