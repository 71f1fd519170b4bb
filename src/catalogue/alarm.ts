/**
 * What a cAlarm sends besides the event itself (proto/calarm.proto): the
 * location, stored only under a valid location consent, and the battery.
 */
import { BATTERY, LOCATION_CODES } from './codes.ts'
import { BATTERY_RANGE, type Measure } from './measure.ts'

export const ALARM_LOCATION = {
  latitude: { proto: 'latitude', field: 'latitude', unit: 'deg', range: [-90, 90], category: 'location', extent: 'instant', code: LOCATION_CODES.latitude },
  longitude: { proto: 'longitude', field: 'longitude', unit: 'deg', range: [-180, 180], category: 'location', extent: 'instant', code: LOCATION_CODES.longitude },
  accuracy_m: { proto: 'accuracy_m', field: 'accuracyM', unit: 'm', range: [0, 1_000_000], category: 'location', extent: 'instant', code: LOCATION_CODES.accuracy_m },
} as const satisfies Record<string, Measure>

export const ALARM_BATTERY = {
  proto: 'battery_percent', field: 'batteryPercent', unit: '%', range: BATTERY_RANGE, category: 'device_diagnostics', extent: 'instant', code: BATTERY,
} as const satisfies Measure
