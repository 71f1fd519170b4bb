/**
 * What a cVitals kit measures (proto/cvitals.proto, SpotMeasurement): one
 * entry per nullable value column of spot_measurements, in table order. A new
 * column also needs a migration (src/storage/schema.ts); test/catalogue.test.ts
 * checks the schema has every column listed here.
 */
import { HEART_RATE, SPO2, code, loinc } from './codes.ts'
import type { Measure } from './measure.ts'

export interface SpotMeasure extends Measure { category: 'spot_measurements' }

export const SPOT = {
  systolic: {
    proto: 'systolic', field: 'systolic', unit: 'mm[Hg]', range: [30, 320], category: 'spot_measurements', extent: 'instant',
    code: code([loinc('8480-6', 'Systolic blood pressure')], 'mm[Hg]', 'mmHg', 'vital-signs'),
  },
  diastolic: {
    proto: 'diastolic', field: 'diastolic', unit: 'mm[Hg]', range: [10, 250], category: 'spot_measurements', extent: 'instant',
    code: code([loinc('8462-4', 'Diastolic blood pressure')], 'mm[Hg]', 'mmHg', 'vital-signs'),
  },
  pulse: { proto: 'pulse', field: 'pulse', unit: '/min', range: [10, 350], category: 'spot_measurements', extent: 'instant', code: HEART_RATE },
  spo2: { proto: 'spo2', field: 'spo2', unit: '%', range: [0, 100], category: 'spot_measurements', extent: 'instant', code: SPO2 },
  temperature: {
    proto: 'temperature', field: 'temperature', unit: 'Cel', range: [20, 46], category: 'spot_measurements', extent: 'instant',
    code: code([loinc('8310-5', 'Body temperature')], 'Cel', '°C', 'vital-signs'),
  },
  glucose: {
    proto: 'glucose', field: 'glucose', unit: 'mmol/L', range: [0.1, 60], category: 'spot_measurements', extent: 'instant',
    code: code([loinc('15074-8', 'Glucose [Moles/volume] in Blood')], 'mmol/L', 'mmol/L', 'laboratory'),
  },
  weight: {
    proto: 'weight', field: 'weight', unit: 'kg', range: [0.3, 650], category: 'spot_measurements', extent: 'instant',
    code: code([loinc('29463-7', 'Body weight')], 'kg', 'kg', 'vital-signs'),
  },
} as const satisfies Record<string, SpotMeasure & { code: object }>

export type SpotColumn = keyof typeof SPOT
/** The nullable value columns of spot_measurements, in table order. */
export const SPOT_COLUMNS = Object.keys(SPOT) as SpotColumn[]
/** The decoded SpotMeasurement's value fields. */
export type SpotField = (typeof SPOT)[SpotColumn]['field']

/** SpotMeasurement fields that are not values: when, and by which meter. */
export const SPOT_FRAME_FIELDS = ['measured_at_ms', 'meter_model'] as const
