/**
 * The patient list's rows, put together from the overview query (src/api/queries.ts `overview`)
 * and the registry's current device bindings: no SQL here, and no query per patient.
 */
import type { DeviceRecord } from '../registry/index.ts'
import { OVERVIEW_METRICS, type OverviewRow } from './queries.ts'

export interface OverviewDevice { device: string; family: string; battery: number | null; lastSeenAt: number | null }
export interface OverviewPatient {
  patient: string
  /** Latest value and its (device) time per metric; a metric without data in the window is absent. */
  vitals: Partial<Record<(typeof OVERVIEW_METRICS)[number], { value: number; at: number }>>
  /** Devices bound to the patient now, with their latest battery and when they were last heard from (null: not in the window). */
  devices: OverviewDevice[]
  /** Unacknowledged button presses and falls in the alarm window. */
  openAlarms: number
}

/** A stored Float32 as its shortest decimal (as ClickHouse writes a Float32 column): 34.3, not 34.29999923706055. */
const float32 = (v: number): number => Number(Math.fround(v).toPrecision(7))

/** One row per patient (the given ids, in their order). */
export function buildOverview (patients: readonly string[], devices: readonly DeviceRecord[], rows: readonly OverviewRow[]): OverviewPatient[] {
  const byPatient = new Map<string, OverviewPatient>(patients.map((p) => [p, { patient: p, vitals: {}, devices: [], openAlarms: 0 }]))
  // per device, its newest battery: from a status message, or the battery a bracelet's batch carries
  const status = new Map<string, { battery: number; seen: number }>()
  const note = (device: string, battery: number, seen: number): void => {
    const s = status.get(device)
    if (s === undefined || seen > s.seen) status.set(device, { battery, seen })
  }
  for (const r of rows) {
    if (r.src === 'd') { note(r.device, r.value, r.seen); continue }
    const p = byPatient.get(r.key)
    if (p === undefined) continue
    if (r.src === 'a') p.openAlarms = r.value
    else if (r.name === 'battery') note(r.device, r.value, r.seen)
    else if ((OVERVIEW_METRICS as readonly string[]).includes(r.name)) p.vitals[r.name as (typeof OVERVIEW_METRICS)[number]] = { value: float32(r.value), at: r.at }
  }
  for (const d of [...devices].sort((a, b) => a.device < b.device ? -1 : a.device > b.device ? 1 : 0)) {
    const p = d.patient === null ? undefined : byPatient.get(d.patient)
    if (p === undefined) continue
    const s = status.get(d.device)
    p.devices.push({ device: d.device, family: d.family, battery: s?.battery ?? null, lastSeenAt: s?.seen ?? null })
  }
  return [...byPatient.values()]
}

/** A patient's devices over time, from the registry's bindings: each interval the device was bound to this patient (to: null = still). */
export function devicesOverTime (patient: string, devices: readonly DeviceRecord[]): Array<{ device: string; family: string; from: number; to: number | null }> {
  const out: Array<{ device: string; family: string; from: number; to: number | null }> = []
  for (const d of devices) {
    d.bindings.forEach((b, i) => {
      if (b.patient === patient) out.push({ device: d.device, family: d.family, from: b.fromMs, to: d.bindings[i + 1]?.fromMs ?? null })
    })
  }
  return out.sort((a, b) => b.from - a.from || (a.device < b.device ? -1 : 1))
}
