/**
 * What each stored value means outside vitalflow: its codes (LOINC first where
 * LOINC has one, IEEE 11073 MDC where the Personal Health Device IG uses it, our
 * own code system where neither has a code), the UCUM unit code and a unit a
 * person reads, and the FHIR observation category. This is the one place that
 * holds them: each family's table (bracelet.ts, spot.ts) puts a Code on every
 * value it lists, and the FHIR and CSV exports take them from there (through
 * src/rights/codes.ts); the .proto comments and the README's table name the same
 * codes (a test compares the .proto ones).
 * Displays are the code systems' own, so a terminology server accepts the pairs.
 *
 * Choices (HL7 FHIR R4 vital-signs profile, Personal Health Device IG):
 * - SpO2 carries 2708-6 (the R4 oxygen-saturation profile requires it) and 59408-5 (by pulse oximetry).
 * - Glucose is a laboratory result, not a vital sign.
 * - HRV: the bracelet sends RMSSD; LOINC 80404-7 is SDNN and neither LOINC nor MDC
 *   has RMSSD, so it is coded in the vitalflow code system (VITALFLOW).
 * - Steps count one interval: 55423-8 with an effectivePeriod (41950-7 is per 24 h).
 * - Sleep: each stored epoch is one stage over its duration; exported as that stage's
 *   LOINC duration (deep 93831-6, light 93830-8, REM 93829-0) in minutes. LOINC has no
 *   awake-duration code (93832-4 is total sleep): awake epochs use VITALFLOW.
 * - Battery (device and alarm button) is MDC_ATTR_VAL_BATT_CHARGE, as the PHD IG reports it.
 */
export const LOINC = 'http://loinc.org'
export const MDC = 'urn:iso:std:iso:11073:10101'
export const UCUM = 'http://unitsofmeasure.org'
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category'
/** Our own code system, for what neither LOINC nor MDC codes; the export carries its CodeSystem resource. */
export const VITALFLOW = 'urn:vitalflow:fhir:CodeSystem:observation'
/** Personal Health Device IG: the gateway (phone) a measurement came through, on Observation. */
export const GATEWAY_EXTENSION = 'http://hl7.org/fhir/uv/phd/StructureDefinition/GatewayDevice'

export type ObservationCategory = 'vital-signs' | 'activity' | 'laboratory'

export interface Coding { system: string; code: string; display: string }

export interface Code {
  /** Observation.code codings; the one a profile requires first. */
  codes: readonly Coding[]
  /** Observation.code.text. */
  text: string
  /** UCUM code of the exported value. */
  ucum: string
  /** The same unit for a person. */
  unit: string
  /** null: no observation category fits (device and service records). */
  category: ObservationCategory | null
}

/** The concepts of VITALFLOW: the CodeSystem resource in every FHIR export lists them. */
export const VITALFLOW_CONCEPTS = {
  'barometric-altitude': { display: 'Barometric altitude', definition: 'Altitude above sea level the bracelet derives from air pressure, in m (its changes show floors and slopes climbed; weather shifts it by tens of metres). Neither LOINC nor IEEE 11073 MDC has a code for it.' },
  'hrv-rmssd': { display: 'Heart rate variability, RMSSD', definition: 'Root mean square of successive differences of normal R-R (pulse) intervals, in ms. LOINC 80404-7 is SDNN, a different statistic; neither LOINC nor IEEE 11073 MDC has a code for RMSSD.' },
  'sleep-awake-duration': { display: 'Awake duration within a sleep period', definition: 'Length of one epoch the bracelet scored as awake. LOINC codes deep, light and REM sleep durations but has no awake-duration code.' },
  'sleep-unscored-duration': { display: 'Unscored sleep-epoch duration', definition: 'Length of one sleep epoch stored without a stage (SLEEP_STAGE_UNSPECIFIED).' },
  'alarm-event': { display: 'Personal alarm event', definition: 'An event a cAlarm personal alarm sent; the value names its kind.' },
  'alarm-button-press': { display: 'Alarm button pressed', definition: 'The wearer pressed the alarm button.' },
  'alarm-fall-detected': { display: 'Fall detected', definition: 'The alarm device detected a fall.' },
  'alarm-low-battery': { display: 'Alarm device battery low', definition: 'The alarm device reported a low battery.' },
  'alarm-heartbeat': { display: 'Alarm device heartbeat', definition: 'Periodic message by which the alarm device shows it is alive.' },
  latitude: { display: 'Latitude (WGS84)', definition: 'Where an alarm event happened, degrees; stored only under a valid location consent.' },
  longitude: { display: 'Longitude (WGS84)', definition: 'Where an alarm event happened, degrees; stored only under a valid location consent.' },
  'location-accuracy': { display: 'Location accuracy radius', definition: 'Radius of the location of an alarm event, metres.' },
  'last-sync': { display: 'Last synchronisation', definition: 'When the device last synchronised, as its status report says.' },
} as const satisfies Record<string, { display: string; definition: string }>
export type VitalflowCode = keyof typeof VITALFLOW_CONCEPTS

export const loinc = (code: string, display: string): Coding => ({ system: LOINC, code, display })
export const mdc = (code: string, display: string): Coding => ({ system: MDC, code, display })
export const own = (code: VitalflowCode): Coding => ({ system: VITALFLOW, code, display: VITALFLOW_CONCEPTS[code].display })
export const code = (codes: Coding[], ucum: string, unit: string, category: ObservationCategory | null, text = codes[0]!.display): Code =>
  ({ codes, text, ucum, unit, category })

export const SPO2 = code([loinc('2708-6', 'Oxygen saturation in Arterial blood'), loinc('59408-5', 'Oxygen saturation in Arterial blood by Pulse oximetry')], '%', '%', 'vital-signs')
export const HEART_RATE = code([loinc('8867-4', 'Heart rate')], '/min', 'beats/minute', 'vital-signs')
export const BATTERY = code([mdc('67996', 'MDC_ATTR_VAL_BATT_CHARGE')], '%', '%', null, 'Battery level')

/** The sleep-epoch value: its duration, in this unit. */
export const SLEEP_UNIT = { ucum: 'min', unit: 'min', perMs: 1 / 60_000 } as const
const sleep = (c: Coding, text: string): Code => code([c], SLEEP_UNIT.ucum, SLEEP_UNIT.unit, 'activity', text)

/** Sleep stages by proto SleepStage number; a stage the proto does not know exports as unscored. */
export const SLEEP_STAGES: ReadonlyArray<{ name: string; code: Code }> = [
  { name: 'unspecified', code: sleep(own('sleep-unscored-duration'), 'Unscored sleep-epoch duration') },
  { name: 'awake', code: sleep(own('sleep-awake-duration'), 'Awake duration (no LOINC code: vitalflow code system)') },
  { name: 'light', code: sleep(loinc('93830-8', 'Light sleep duration'), 'Light sleep duration') },
  { name: 'deep', code: sleep(loinc('93831-6', 'Deep sleep duration'), 'Deep sleep duration') },
  { name: 'rem', code: sleep(loinc('93829-0', 'REM sleep duration'), 'REM sleep duration') },
]

export function sleepStageName (stage: number): string {
  return SLEEP_STAGES[stage]?.name ?? `stage ${stage}`
}

export function sleepStageCode (stage: number): Code {
  return (SLEEP_STAGES[stage] ?? SLEEP_STAGES[0]!).code
}

/** Systolic and diastolic of one reading travel together, as components of this panel (R4 blood-pressure profile). */
export const BLOOD_PRESSURE_PANEL = code([loinc('85354-9', 'Blood pressure panel with all children optional')], '', '', 'vital-signs')

/** Alarm events (alarm_events.kind): one Observation each, the kind as its value. */
export const ALARM_EVENT = code([own('alarm-event')], '', '', null, 'Personal alarm event')
export const ALARM_KINDS: Readonly<Record<string, VitalflowCode>> = {
  button_press: 'alarm-button-press', fall_detected: 'alarm-fall-detected', low_battery: 'alarm-low-battery', heartbeat: 'alarm-heartbeat',
}
export const LOCATION_CODES = {
  latitude: code([own('latitude')], 'deg', 'degrees', null),
  longitude: code([own('longitude')], 'deg', 'degrees', null),
  accuracy_m: code([own('location-accuracy')], 'm', 'm', null),
} as const
export const LAST_SYNC = code([own('last-sync')], '', '', null)
/** Device.version type of a firmware revision (MDC_ID_PROD_SPEC_FW). */
export const FIRMWARE_REVISION = mdc('531976', 'MDC_ID_PROD_SPEC_FW')

/** The LOINC code of a Code, '' when it has none (the CSV loinc column). */
export function loincOf (c: Code): string {
  return c.codes.find((x) => x.system === LOINC)?.code ?? ''
}

// ---- the same, in FHIR shape ------------------------------------------------------------

export const FHIR_CATEGORY: Readonly<Record<ObservationCategory, unknown[]>> = {
  'vital-signs': [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'vital-signs', display: 'Vital Signs' }] }],
  activity: [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'activity', display: 'Activity' }] }],
  laboratory: [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'laboratory', display: 'Laboratory' }] }],
}

/** A CodeableConcept of one of our own codes. */
export function vitalflowConcept (c: VitalflowCode): { coding: Coding[]; text: string } {
  return { coding: [own(c)], text: VITALFLOW_CONCEPTS[c].display }
}

/** The CodeSystem resource of VITALFLOW, so an export explains the codes it uses. */
export function vitalflowCodeSystem (): Record<string, unknown> {
  return {
    resourceType: 'CodeSystem',
    url: VITALFLOW,
    name: 'VitalflowObservationCodes',
    title: 'vitalflow observation codes',
    status: 'active',
    description: 'Codes vitalflow uses where neither LOINC nor IEEE 11073 MDC has one.',
    caseSensitive: true,
    content: 'complete',
    concept: Object.entries(VITALFLOW_CONCEPTS).map(([c, { display, definition }]) => ({ code: c, display, definition })),
  }
}
