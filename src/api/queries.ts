/**
 * Every read the clinician API makes. Each binds the tenant as a query
 * parameter ({tenant:String}) from the authenticated principal: never
 * concatenated, never from a request field.
 */
import { SPOT_COLUMNS } from '../catalogue/index.ts'
import { selectRows, type StorageConnection } from '../storage/index.ts'

const SPOT_VALUES = SPOT_COLUMNS.join(', ')

export interface SeriesPoint { t: number; min: number; avg: number; max: number; n: number }

export function createQueries (conn: StorageConnection) {
  const t = conn.table
  const rows = <T>(query: string, params: Record<string, unknown>): Promise<T[]> => selectRows<T>(conn, query, params)
  return {
    patients: (tenant: string) => rows<{ patient: string }>(
      `SELECT patient_id AS patient FROM ${t('patients')} FINAL WHERE tenant_id = {tenant:String} ORDER BY patient_id`, { tenant }),

    latest: async (tenant: string, patient: string) => (await rows<{ metric: string; value: number; at: string }>(
      `SELECT metric, argMax(value, ts) AS value, toString(toUnixTimestamp64Milli(max(ts))) AS at FROM ${t('vital_samples')}
       WHERE tenant_id = {tenant:String} AND patient_id = {patient:String} AND category != 'device_diagnostics'
       GROUP BY metric ORDER BY metric`, { tenant, patient })).map((r) => ({ metric: r.metric, value: r.value, at: Number(r.at) })),

    /** min/avg/max per bucket in one query: a year of 1 Hz data comes back as at most `buckets` points. */
    series: async (tenant: string, patient: string, metric: string, from: number, to: number, buckets: number): Promise<SeriesPoint[]> => {
      const width = Math.max(1, Math.ceil((to - from) / buckets))
      return (await rows<{ b: string; min: number; avg: number; max: number; n: string }>(
        `SELECT toString(intDiv(toUnixTimestamp64Milli(ts) - {from:Int64}, {width:Int64})) AS b, min(value) AS min, avg(value) AS avg, max(value) AS max, count() AS n
         FROM ${t('vital_samples')}
         WHERE tenant_id = {tenant:String} AND patient_id = {patient:String} AND metric = {metric:String}
           AND ts >= fromUnixTimestamp64Milli({from:Int64}) AND ts < fromUnixTimestamp64Milli({to:Int64})
         GROUP BY b ORDER BY toInt64(b)`, { tenant, patient, metric, from, to, width }))
        .map((r) => ({ t: from + Number(r.b) * width, min: r.min, avg: r.avg, max: r.max, n: Number(r.n) }))
    },

    spot: (tenant: string, patient: string, from: number, to: number) => rows<Record<string, unknown>>(
      `SELECT toUnixTimestamp64Milli(ts) AS at, device_id AS device, meter_model, ${SPOT_VALUES}
       FROM ${t('spot_measurements')} WHERE tenant_id = {tenant:String} AND patient_id = {patient:String}
         AND ts >= fromUnixTimestamp64Milli({from:Int64}) AND ts < fromUnixTimestamp64Milli({to:Int64}) ORDER BY ts`, { tenant, patient, from, to }),

    alarms: (tenant: string, from: number, to: number, patient: string | null) => rows<Record<string, unknown>>(
      `SELECT toUnixTimestamp64Milli(a.ts) AS at, a.device_id AS device, toString(a.seq) AS seq, a.patient_id AS patient, a.kind AS kind,
         a.latitude AS latitude, a.longitude AS longitude, k.acknowledged_by AS acknowledgedBy, toUnixTimestamp64Milli(k.acked_ts) AS acknowledgedAt
       FROM ${t('alarm_events')} AS a
       LEFT JOIN (SELECT device_id, seq, argMin(acknowledged_by, ts) AS acknowledged_by, min(ts) AS acked_ts FROM ${t('alarm_acks')}
                  WHERE tenant_id = {tenant:String} GROUP BY device_id, seq) AS k ON a.device_id = k.device_id AND a.seq = k.seq
       WHERE a.tenant_id = {tenant:String} AND a.kind IN ('button_press', 'fall_detected')
         AND a.ts >= fromUnixTimestamp64Milli({from:Int64}) AND a.ts < fromUnixTimestamp64Milli({to:Int64})
         AND ({patient:String} = '' OR a.patient_id = {patient:String})
       ORDER BY a.ts DESC LIMIT 10000`, { tenant, from, to, patient: patient ?? '' }),

    alarmExists: async (tenant: string, device: string, seq: number | string) => Number((await rows<{ n: string | number }>(
      `SELECT count() AS n FROM ${t('alarm_events')} WHERE tenant_id = {tenant:String} AND device_id = {device:String} AND seq = {seq:UInt64}`,
      { tenant, device, seq }))[0]?.n ?? 0) > 0,

    /** The last status of each device that has sent one (devices that never did are not here). */
    devices: async (tenant: string) => (await rows<{ device: string; battery: number; firmware: string; lastStatusAt: string; lastSeenAt: string }>(
      `SELECT device_id AS device, argMax(battery, ts) AS battery, argMax(firmware, ts) AS firmware, toString(toUnixTimestamp64Milli(max(ts))) AS lastStatusAt,
         toString(toUnixTimestamp64Milli(max(ingested_at))) AS lastSeenAt
       FROM ${t('device_status')} WHERE tenant_id = {tenant:String} GROUP BY device_id ORDER BY device_id`, { tenant }))
      .map((r) => ({ device: r.device, battery: Number(r.battery), firmware: r.firmware, lastStatusAt: Number(r.lastStatusAt), lastSeenAt: Number(r.lastSeenAt) })),

    /** Daily aggregates over the given (research-consented) patients; groups smaller than k are suppressed. */
    research: (tenant: string, patients: string[], metric: string, from: number, to: number, k: number) => rows<Record<string, unknown>>(
      `SELECT toString(toDate(ts)) AS day, uniqExact(patient_id) AS patients, avg(value) AS avg, min(value) AS min, max(value) AS max
       FROM ${t('vital_samples')}
       WHERE tenant_id = {tenant:String} AND patient_id IN {patients:Array(String)} AND metric = {metric:String}
         AND ts >= fromUnixTimestamp64Milli({from:Int64}) AND ts < fromUnixTimestamp64Milli({to:Int64})
       GROUP BY day HAVING patients >= {k:UInt32} ORDER BY day`, { tenant, patients, metric, from, to, k }),

    acknowledge: (tenant: string, device: string, seq: number | string, user: string) => conn.client.insert({
      table: t('alarm_acks'), format: 'JSONEachRow', values: [{ tenant_id: tenant, device_id: device, seq, acknowledged_by: user, ts: Date.now() }],
    }),
  }
}

export type Queries = ReturnType<typeof createQueries>
