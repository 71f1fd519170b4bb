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
  let enrolled = 0
  await inPool(opts.devices, 8, async (i) => {
    const family = familyOf(i)
    const tenant = tenants[i % tenants.length]!
    const device = `sim-${family}-${String(i).padStart(5, '0')}`
    const prior = byId.get(device)
    if (prior !== undefined && known.has(prior.device) && prior.tenant === tenant && (family !== 'bracelet' || prior.gateway !== undefined)) { fleet[i] = prior; return }
    const patient = `sim-patient-${String(i).padStart(5, '0')}`
    const consent = i % 10 !== 9
    await api.request('POST', `/admin/tenants/${tenant}/patients`, { patient })
    if (consent) {
      for (const category of CONSENTED) {
        // recorded from a signed paper form, valid since a month ago (the simulated clock starts in the past)
        await api.request('POST', `/admin/tenants/${tenant}/patients/${patient}/consent`, {
          category, action: 'grant', recordedBy: 'simulator', source: 'paper_form', validFromMs: Date.now() - 30 * 86_400_000,
        })
      }
    }
    // device ids are unique across tenants: one taken here or by another tenant gets a fresh suffix
    const enroll = async (id: string): Promise<{ secret: string; keyId: number; key: string }> =>
      await api.request('POST', `/admin/tenants/${tenant}/devices`, { device: id, family, patient })
    const suffixed = (): string => `${device}-r${Date.now().toString(36)}${i.toString(36)}`
    let fresh = known.has(device) ? suffixed() : device
    const e = await enroll(fresh).catch(async (err: unknown) => {
      if (!(err instanceof AdminApiError) || err.status !== 409) throw err
      return await enroll(fresh = suffixed())
    })
    fleet[i] = { tenant, device: fresh, family, patient, consent, secret: e.secret, keyId: e.keyId, key: e.key }
    if (family === 'bracelet') {
      // the patient's phone: enrolled as a gateway, then allowed to publish for this bracelet
      const phone = `${fresh}-phone`
      const g = await api.request<{ secret: string }>('POST', `/admin/tenants/${tenant}/devices`, { device: phone, family: 'gateway', patient: null })
      await api.request('POST', `/admin/tenants/${tenant}/devices/${fresh}/gateway`, { gateway: phone })
      fleet[i].gateway = { device: phone, secret: g.secret }
    }
    enrolled++
  })
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

/** Runs task(0..n-1) with at most `width` in flight. */
export async function inPool (n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => { while (next < n) await task(next++) }
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker))
}
