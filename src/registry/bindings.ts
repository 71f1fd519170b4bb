import type { PatientId } from '../ids.ts'

/** A device is bound to one patient (or none) from `fromMs` until the next binding starts. */
export interface Binding { readonly fromMs: number; readonly patient: PatientId | null }

/** The patient a device was bound to at time t; bindings are sorted by fromMs. */
export function patientAt (bindings: readonly Binding[], t: number): PatientId | null {
  for (let i = bindings.length - 1; i >= 0; i--) {
    const b = bindings[i]!
    if (b.fromMs <= t) return b.patient
  }
  return null
}
