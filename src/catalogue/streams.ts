/** Which table each stream's messages are stored in (topic v1/{tenant}/{device}/{stream}). */
export const STREAM_TABLE = {
  vitals: 'vital_samples',
  spot: 'spot_measurements',
  alarm: 'alarm_events',
  status: 'device_status',
} as const
export type CatalogueStream = keyof typeof STREAM_TABLE
/** The tables that hold what devices sent, in stream order. */
export type CatalogueTable = (typeof STREAM_TABLE)[CatalogueStream]
