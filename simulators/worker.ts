/**
 * One simulator worker process: runs its slice of the fleet and sends the
 * result back to the parent (`npm run sim -- --workers N`), for when one
 * process cannot generate enough load (TLS handshakes and sealing are CPU).
 */
import { createAdminClient } from '../src/api/index.ts'
import { runFleet, type FleetOptions } from './fleet.ts'
import { pushedHeads } from './observers.ts'

export interface WorkerInput extends Omit<FleetOptions, 'api' | 'log' | 'heads'> {
  admin: { baseUrl: string; token: string; metricsToken: string } | null
  /** What is queryable comes from the parent's poll (`{ heads }` messages), not from a poll of this worker's own. */
  pushedHeads: boolean
}

process.once('message', (input: WorkerInput) => {
  const api = input.admin === null ? undefined : createAdminClient(input.admin.baseUrl, input.admin.token, input.admin.metricsToken)
  runFleet({ ...input, ...(api === undefined ? {} : { api }), ...(input.pushedHeads ? { heads: pushedHeads() } : {}), log: (s) => { process.stderr.write(`sim[${process.pid}]: ${s}\n`) } }).then(
    (result) => { process.send!(result, () => { process.exit(0) }) },
    (err: unknown) => { process.stderr.write(`sim worker: ${(err as Error).message}\n`); process.exit(1) },
  )
})
