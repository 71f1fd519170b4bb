/**
 * The codes the exports use. They live in the catalogue (src/catalogue/codes.ts
 * and each family's table there); this module is the rights stage's view of them.
 */
export {
  ALARM_EVENT, ALARM_KINDS, BATTERY, BLOOD_PRESSURE_PANEL, FHIR_CATEGORY, FIRMWARE_REVISION, GATEWAY_EXTENSION, LAST_SYNC, LOCATION_CODES,
  LOINC, MDC, OBSERVATION_CATEGORY, SLEEP_STAGES, SLEEP_UNIT, SPOT_CODES, SPOT_COLUMNS, UCUM, VITAL_CODES, VITALFLOW, VITALFLOW_CONCEPTS,
  loincOf, sleepStageCode, sleepStageName, vitalflowCodeSystem, vitalflowConcept,
} from '../catalogue/index.ts'
export type { Code, Coding, ObservationCategory, SpotColumn, VitalflowCode } from '../catalogue/index.ts'
