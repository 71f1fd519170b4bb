/**
 * The simulator's demo fleet: tenants, patients and enrolled devices, created
 * through the real admin API and remembered (with their one-time credentials)
 * in DATA_DIR/sim/fleet.json (mode 0600) so later runs reuse them.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { AdminApiError, type AdminClient } from '../src/api/index.ts'
import { CONSENT_CATEGORIES } from '../src/consent/index.ts'
import type { Family } from '../src/registry/index.ts'

export interface SimDevice {
  tenant: string
  device: string
  family: Family
  patient: string
  /** Whether the patient consented to the consent-based categories (a tenth do not). */
  consent: boolean
  secret: string
  keyId: number
  key: string
  /** A client certificate for mutual TLS (when the fleet was made with certificates), issued through the admin API. */
  certificate?: SimCertificate
  /** Bracelets reach us through the patient's phone: the gateway identity that connects and publishes for them. */
  gateway?: { device: string; secret: string; certificate?: SimCertificate }
}

export interface SimCertificate { certPem: string; keyPem: string }

export interface FleetStoreOptions {
  devices: number
  tenants: number
  /** Also issue every connecting identity (gateway phones, cVitals, cAlarms) a client certificate for the mutual-TLS listener. */
  certificates?: boolean
  log: (s: string) => void
}

/** One responder identity per tenant: the alarm centre's app, subscribed to the tenant's alerts. */
export interface SimResponder { tenant: string; device: string; secret: string }

/** A consenting simulated patient grants every category the policy stores only under consent. */
const CONSENTED = CONSENT_CATEGORIES
const MIX: readonly Family[] = ['bracelet', 'bracelet', 'cvitals', 'calarm']

function familyOf (i: number): Family { return MIX[i % MIX.length]! }

export async function ensureFleet (api: AdminClient, file: string, opts: FleetStoreOptions): Promise<SimDevice[]> {
  return (await ensureFleetWithResponders(api, file, opts)).fleet
}

export async function ensureFleetWithResponders (api: AdminClient, file: string, opts: FleetStoreOptions): Promise<{ fleet: SimDevice[]; responders: SimResponder[] }> {
  const stored = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as { devices: SimDevice[]; responders?: SimResponder[] } : { devices: [] }
  const saved = stored.devices
  const savedResponders = stored.responders ?? []
  // by the fleet slot's base id: a device enrolled under a suffixed id (the base one was taken) is found again
  const byId = new Map(saved.map((d) => [d.device.replace(/-r[0-9a-z]+$/, ''), d]))
  const tenants = Array.from({ length: opts.tenants }, (_, t) => `demo-care-${t + 1}`)
  const known = new Set<string>()
  for (const [t, tenant] of tenants.entries()) {
    await api.request('POST', '/admin/tenants', { tenant, displayName: `Demo care organisation ${t + 1}` })
    // the fleet view pages by device id
    for (let after = ''; ;) {
      const page = await api.request<{ devices: Array<{ device: string }>; next: string | null }>('GET', `/admin/tenants/${tenant}/devices?limit=5000${after === '' ? '' : `&after=${after}`}`)
      for (const d of page.devices) known.add(d.device)
      if (page.next === null) break
      after = page.next
    }
    if (!savedResponders.some((r) => r.tenant === tenant && known.has(r.device))) {
      const device = `sim-responder-${tenant}-${Date.now().toString(36)}`
      const e = await api.request<{ secret: string }>('POST', `/admin/tenants/${tenant}/devices`, { device, family: 'responder', patient: null })
      savedResponders.splice(0, savedResponders.length, ...savedResponders.filter((r) => r.tenant !== tenant), { tenant, device, secret: e.secret })
    }
  }
  const fleet = new Array<SimDevice>(opts.devices)
  // what is not reusable is enrolled in bulk, per tenant: patients with their grants, then devices (gateway phones first)
  const wanted = new Map<string, number[]>(tenants.map((t) => [t, []]))
  for (let i = 0; i < opts.devices; i++) {
    const family = familyOf(i)
    const tenant = tenants[i % tenants.length]!
    const prior = byId.get(`sim-${family}-${String(i).padStart(5, '0')}`)
    if (prior !== undefined && known.has(prior.device) && prior.tenant === tenant && (family !== 'bracelet' || prior.gateway !== undefined)) fleet[i] = prior
    else wanted.get(tenant)!.push(i)
  }
  let enrolled = 0
  for (const [tenant, slots] of wanted) {
    for (let from = 0; from < slots.length; from += 5000) {
      const chunk = slots.slice(from, from + 5000)
      await api.request('POST', `/admin/tenants/${tenant}/patients:import`, {
        recordedBy: 'simulator', source: 'paper_form',
        // recorded from signed paper forms, valid since a month ago (the simulated clock starts in the past)
        patients: chunk.map((i) => ({ patient: patientOf(i), grants: i % 10 === 9 ? [] : CONSENTED.map((category) => ({ category, validFromMs: Date.now() - 30 * 86_400_000 })) })),
      })
      for (const d of await enrolInBulk(api, tenant, chunk, known)) { fleet[d.slot] = d.device; enrolled++ }
    }
  }
  let issued = 0
  if (opts.certificates === true) {
    // the identity that connects: the gateway phone for a bracelet, else the device itself; kept with the fleet for later runs
    await inPool(fleet.length, 8, async (i) => {
      const d = fleet[i]!
      const holder: { device: string; certificate?: SimCertificate } = d.gateway ?? d
      if (holder.certificate !== undefined) return
      holder.certificate = await api.request<SimCertificate>('POST', `/admin/tenants/${d.tenant}/devices/${holder.device}/certificate`, {})
      issued++
    })
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const keep = new Map([...saved, ...fleet].map((d) => [d.device, d]))
  writeFileSync(file, JSON.stringify({ devices: [...keep.values()], responders: savedResponders }, null, 1), { mode: 0o600 })
  opts.log(`fleet: ${fleet.length} devices over ${tenants.length} tenants (${enrolled} newly enrolled, ${fleet.length - enrolled} reused${opts.certificates === true ? `, ${issued} certificates issued` : ''})`)
  return { fleet, responders: tenants.map((t) => savedResponders.find((r) => r.tenant === t)!) }
}

const patientOf = (i: number): string => `sim-patient-${String(i).padStart(5, '0')}`

interface Imported { device: string; secret: string; keyId: number; key: string }

/**
 * Enrols the fleet slots of a tenant in one import (devices:import, NDJSON): a bracelet's gateway
 * phone on the line before it. Device ids are unique across tenants: an id this tenant already
 * holds, or another one does (the import answers 422 "taken" for the whole file), gets a fresh suffix.
 */
async function enrolInBulk (api: AdminClient, tenant: string, slots: number[], known: Set<string>): Promise<Array<{ slot: number; device: SimDevice }>> {
  const ids = new Map(slots.map((i) => [i, `sim-${familyOf(i)}-${String(i).padStart(5, '0')}`]))
  const suffix = (i: number): void => { ids.set(i, `${ids.get(i)!}-r${Date.now().toString(36)}${i.toString(36)}`) }
  for (const i of slots) if (known.has(ids.get(i)!)) suffix(i)
  for (let attempt = 0; ; attempt++) {
    const lines: Array<{ slot: number; line: Record<string, string> }> = []
    for (const i of slots) {
      const id = ids.get(i)!
      if (familyOf(i) === 'bracelet') lines.push({ slot: i, line: { device: `${id}-phone`, family: 'gateway' } })
      lines.push({ slot: i, line: { device: id, family: familyOf(i), patient: patientOf(i), ...(familyOf(i) === 'bracelet' ? { gateway: `${id}-phone` } : {}) } })
    }
    const r = await api.upload<{ applied: boolean; enrolled: Imported[]; errors: Array<{ line: number; code: string; message: string }> }>(
      `/admin/tenants/${tenant}/devices:import`, 'application/x-ndjson', lines.map((l) => JSON.stringify(l.line)).join('\n'))
    if (r.body.applied) {
      const got = new Map(r.body.enrolled.map((e) => [e.device, e]))
      return slots.map((i) => {
        const id = ids.get(i)!
        const e = got.get(id)!
        const d: SimDevice = { tenant, device: id, family: familyOf(i), patient: patientOf(i), consent: i % 10 !== 9, secret: e.secret, keyId: e.keyId, key: e.key }
        if (familyOf(i) === 'bracelet') d.gateway = { device: `${id}-phone`, secret: got.get(`${id}-phone`)!.secret }
        return { slot: i, device: d }
      })
    }
    // ids taken (here by an earlier fleet file, or by another tenant), and the bracelets whose phone was one of them: fresh ids, once
    if (attempt > 0 || r.body.errors.some((e) => e.code !== 'ING_ERR_CONFLICT' && e.code !== 'ING_ERR_NOT_FOUND')) {
      throw new AdminApiError(r.status, `device import refused: ${r.body.errors.slice(0, 3).map((e) => `line ${e.line}: ${e.message}`).join('; ')}`)
    }
    for (const slot of new Set(r.body.errors.map((e) => lines[e.line - 1]!.slot))) suffix(slot)
  }
}

/** Runs task(0..n-1) with at most `width` in flight. */
export async function inPool (n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => { while (next < n) await task(next++) }
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker))
}
