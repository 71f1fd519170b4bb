/**
 * The simulator's demo fleet: tenants, patients and enrolled devices, created
 * through the real admin API and remembered (with their one-time credentials)
 * in DATA_DIR/sim/fleet.json (mode 0600) so later runs reuse them.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { AdminClient } from '../src/api/index.ts'
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
}

const CONSENTED = ['vitals', 'sleep', 'activity', 'spot_measurements', 'location'] as const
const MIX: readonly Family[] = ['bracelet', 'bracelet', 'cvitals', 'calarm']

function familyOf (i: number): Family { return MIX[i % MIX.length]! }

export async function ensureFleet (api: AdminClient, file: string, opts: { devices: number; tenants: number; log: (s: string) => void }): Promise<SimDevice[]> {
  const saved: SimDevice[] = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { devices: SimDevice[] }).devices : []
  const byId = new Map(saved.map((d) => [d.device, d]))
  const tenants = Array.from({ length: opts.tenants }, (_, t) => `demo-care-${t + 1}`)
  const known = new Set<string>()
  for (const [t, tenant] of tenants.entries()) {
    await api.request('POST', '/admin/tenants', { tenant, displayName: `Demo care organisation ${t + 1}` })
    for (const d of await api.request<Array<{ device: string }>>('GET', `/admin/tenants/${tenant}/devices`)) known.add(d.device)
  }
  const fleet: SimDevice[] = new Array(opts.devices)
  let enrolled = 0
  await inPool(opts.devices, 8, async (i) => {
    const family = familyOf(i)
    const tenant = tenants[i % tenants.length]!
    const device = `sim-${family}-${String(i).padStart(5, '0')}`
    const prior = byId.get(device)
    if (prior !== undefined && known.has(device) && prior.tenant === tenant) { fleet[i] = prior; return }
    const patient = `sim-patient-${String(i).padStart(5, '0')}`
    const consent = i % 10 !== 9
    await api.request('POST', `/admin/tenants/${tenant}/patients`, { patient })
    if (consent) {
      for (const category of CONSENTED) {
        // recorded from a signed paper form, valid since a month ago (the simulated clock starts in the past)
        await api.request('POST', `/admin/tenants/${tenant}/consent`, {
          patient, category, action: 'grant', recordedBy: 'simulator', source: 'paper_form', validFromMs: Date.now() - 30 * 86_400_000,
        })
      }
    }
    const fresh = known.has(device) ? `${device}-r${Date.now().toString(36)}` : device
    const e = await api.request<{ secret: string; keyId: number; key: string }>('POST', `/admin/tenants/${tenant}/devices`, { device: fresh, family, patient })
    fleet[i] = { tenant, device: fresh, family, patient, consent, secret: e.secret, keyId: e.keyId, key: e.key }
    enrolled++
  })
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const keep = new Map([...saved, ...fleet].map((d) => [d.device, d]))
  writeFileSync(file, JSON.stringify({ devices: [...keep.values()] }, null, 1), { mode: 0o600 })
  opts.log(`fleet: ${fleet.length} devices over ${tenants.length} tenants (${enrolled} newly enrolled, ${fleet.length - enrolled} reused)`)
  return fleet
}

/** Runs task(0..n-1) with at most `width` in flight. */
export async function inPool (n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => { while (next < n) await task(next++) }
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker))
}
