/**
 * Reads a stopped node's alarm rows with a chDB session of its own and prints
 * `{ "<device>/<seq>": count }` as JSON. Run as its own process by the fault
 * model, so the checker shares nothing with the node it checks and no chDB
 * session outlives the files it read (a closed session's background threads
 * may still touch them).
 */
import { join } from 'node:path'
import { createClient } from '@clickhouse/client'

const dataDir = process.argv[2]
if (dataDir === undefined) throw new Error('usage: read-alarm-rows.ts <data dir>')
const { createChdbConnection } = await import('chdb/connection')
const connection = createChdbConnection({ path: join(dataDir, 'chdb') }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection']
const client = createClient({ connection })
const rs = await client.query({ query: 'SELECT device_id, toString(seq) AS s, count() AS n FROM vitalflow.alarm_events GROUP BY device_id, seq', format: 'JSONEachRow' })
const out: Record<string, number> = {}
for (const r of await rs.json<{ device_id: string; s: string; n: string | number }>()) out[`${r.device_id}/${r.s}`] = Number(r.n)
await client.close()
// exit only once the JSON is written: stdout is a pipe, and process.exit() would cut a large answer short
process.stdout.write(JSON.stringify(out), () => { process.exit(0) })
