/**
 * What each stored value means outside vitalflow: LOINC code and display, UCUM
 * unit code and a unit a person reads, and the FHIR observation category. The
 * codes are the ones the device contracts name (proto/*.proto comments); the
 * displays are LOINC's own, so a terminology server accepts the pair.
 */
import type { Metric } from '../consent/index.ts'

export const LOINC = 'http://loinc.org'
export const UCUM = 'http://unitsofmeasure.org'
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category'

export type ObservationCategory = 'vital-signs' | 'activity'

export interface Code {
  loinc: string
  display: string
  /** UCUM code; '' when the value is coded, not a quantity. */
  ucum: string
  /** The same unit for a person; '' when there is none. */
  unit: string
  category: ObservationCategory
}

/**
 * Health metrics of vital_samples. battery is device diagnostics, not a health
 * observation: it is in NDJSON/CSV (DIAGNOSTIC_UNITS) and never in FHIR.
 * Code choices to revisit with the clinical owner (kept as the contracts name them):
 * 80404-7 is the SD of R-R intervals (SDNN) while the bracelet reports RMSSD;
 * 41950-7 is steps per 24 h while a sample counts one interval; 93832-4 is
 * LOINC's "Sleep duration" while the value is a stage.
 */
export const VITAL_CODES = {
  heart_rate: { loinc: '8867-4', display: 'Heart rate', ucum: '/min', unit: 'beats/minute', category: 'vital-signs' },
  hrv_rmssd: { loinc: '80404-7', display: 'R-R interval.standard deviation (Heart rate variability)', ucum: 'ms', unit: 'ms', category: 'vital-signs' },
  spo2: { loinc: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry', ucum: '%', unit: '%', category: 'vital-signs' },
  respiration_rate: { loinc: '9279-1', display: 'Respiratory rate', ucum: '/min', unit: 'breaths/minute', category: 'vital-signs' },
  skin_temperature: { loinc: '39106-0', display: 'Temperature of Skin', ucum: 'Cel', unit: '°C', category: 'vital-signs' },
  steps: { loinc: '41950-7', display: 'Number of steps in 24 hour Measured', ucum: '{steps}', unit: 'steps', category: 'activity' },
  active_energy: { loinc: '41981-2', display: 'Calories burned', ucum: 'kcal', unit: 'kcal', category: 'activity' },
  sleep_stage: { loinc: '93832-4', display: 'Sleep duration', ucum: '', unit: '', category: 'activity' },
} as const satisfies Record<Exclude<Metric, 'battery'>, Code>

/** Units of the diagnostics metrics, for NDJSON/CSV only. */
export const DIAGNOSTIC_UNITS: Readonly<Record<string, string>> = { battery: '%' }

/** The nullable value columns of spot_measurements, in table order. */
export const SPOT_COLUMNS = ['systolic', 'diastolic', 'pulse', 'spo2', 'temperature', 'glucose', 'weight'] as const
export type SpotColumn = (typeof SPOT_COLUMNS)[number]

export const SPOT_CODES = {
  systolic: { loinc: '8480-6', display: 'Systolic blood pressure', ucum: 'mm[Hg]', unit: 'mmHg', category: 'vital-signs' },
  diastolic: { loinc: '8462-4', display: 'Diastolic blood pressure', ucum: 'mm[Hg]', unit: 'mmHg', category: 'vital-signs' },
  pulse: { loinc: '8867-4', display: 'Heart rate', ucum: '/min', unit: 'beats/minute', category: 'vital-signs' },
  spo2: { loinc: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry', ucum: '%', unit: '%', category: 'vital-signs' },
  temperature: { loinc: '8310-5', display: 'Body temperature', ucum: 'Cel', unit: '°C', category: 'vital-signs' },
  glucose: { loinc: '15074-8', display: 'Glucose [Moles/volume] in Blood', ucum: 'mmol/L', unit: 'mmol/L', category: 'vital-signs' },
  weight: { loinc: '29463-7', display: 'Body weight', ucum: 'kg', unit: 'kg', category: 'vital-signs' },
} as const satisfies Record<SpotColumn, Code>

/** Systolic and diastolic of one reading travel together, as components of this panel. */
export const BLOOD_PRESSURE_PANEL = { loinc: '85354-9', display: 'Blood pressure panel with all children optional' } as const

/**
 * Sleep stages (proto SleepStage, by number) as FHIR valueCodeableConcept: coded in
 * the HL7 Personal Health Record IG's sleep-analysis code system (trial use), with
 * our own stage name as text. Stage 0 (unspecified) and numbers the proto does not
 * know carry text only.
 */
export const SLEEP_STAGE_SYSTEM = 'http://hl7.org/fhir/uv/phr/CodeSystem/sleep-analysis-codes'
export const SLEEP_STAGES: ReadonlyArray<{ name: string; code: string | null; display: string }> = [
  { name: 'unspecified', code: null, display: '' },
  { name: 'awake', code: 'awake', display: 'Awake' },
  { name: 'light', code: 'asleepCore', display: 'Asleep core' },
  { name: 'deep', code: 'asleepDeep', display: 'Asleep deep' },
  { name: 'rem', code: 'asleepREM', display: 'Asleep REM' },
]

export function sleepStageName (stage: number): string {
  return SLEEP_STAGES[stage]?.name ?? `stage ${stage}`
}

// ---- the same, in FHIR shape ------------------------------------------------------------

export const FHIR_CATEGORY: Readonly<Record<ObservationCategory, unknown[]>> = {
  'vital-signs': [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'vital-signs', display: 'Vital Signs' }] }],
  activity: [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'activity', display: 'Activity' }] }],
}

/** Observation.code of a LOINC code. */
export function fhirCode (c: { loinc: string; display: string }): { coding: Array<{ system: string; code: string; display: string }>; text: string } {
  return { coding: [{ system: LOINC, code: c.loinc, display: c.display }], text: c.display }
}

/** Observation.valueCodeableConcept of a sleep stage number. */
export function sleepStageConcept (stage: number): { coding?: Array<{ system: string; code: string; display: string }>; text: string } {
  const s = SLEEP_STAGES[stage]
  return s?.code != null ? { coding: [{ system: SLEEP_STAGE_SYSTEM, code: s.code, display: s.display }], text: s.name } : { text: sleepStageName(stage) }
}
