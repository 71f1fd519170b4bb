/**
 * What the fleet watches from outside the devices: responders subscribed to
 * their tenant's alerts (alarm → responder latency) and a poll of the highest
 * stored sequence number per device (device send → queryable latency).
 */
import mqtt, { type MqttClient } from 'mqtt'
import { STORED_SINCE_HEADER, type AdminClient } from '../src/api/index.ts'
import type { FleetOptions, RunTally } from './fleet-types.ts'

const POLL_MS = 200

/** Connects each responder and times the alarms it is sent; a responder that cannot connect is a connect failure. */
export async function connectResponders (opts: FleetOptions, tally: RunTally): Promise<MqttClient[]> {
  const responders: MqttClient[] = []
  for (const resp of opts.responders ?? []) {
    try {
      const c = await mqtt.connectAsync({ protocol: 'mqtts', host: opts.host, port: opts.port, ca: opts.ca, servername: 'localhost', clientId: resp.device, username: resp.device, password: resp.secret, clean: true, reconnectPeriod: 1000 })
      await c.subscribeAsync(`v1/${resp.tenant}/alerts`, { qos: 1 })
      c.on('message', (_topic, payload) => {
        const a = JSON.parse(payload.toString()) as { device: string; seq: number }
        const at = tally.awaitingResponder.get(`${a.device}/${a.seq}`)
        if (at !== undefined) {
          const kept = tally.samples.alarm.length
          tally.keep(tally.samples.alarm, Date.now() - at)
          // with its send time, if kept: the ones sent while other devices were still connecting are told apart
          if (tally.samples.alarm.length > kept) tally.samples.alarmSentAt.push(at)
          tally.awaitingResponder.delete(`${a.device}/${a.seq}`)
        }
      })
      responders.push(c)
    } catch {
      tally.r.connectFailures++
    }
  }
  return responders
}

/** The highest stored sequence number per device of one tenant, as the admin API answers it. */
export type Heads = Array<{ device: string; seq: number }>

/**
 * Where a fleet learns what is queryable. In one process it polls the admin API itself; worker
 * processes are pushed the parent's one poll instead (`pushedHeads`), so the node answers one
 * poller and not one per worker: a poll costs the node about 13 ms of CPU (ClickHouse and JSON, 2,000
 * devices), and a poller per worker made that a third of a core in a 10,000-device soak.
 */
export interface HeadsSource {
  /** Calls `apply` with each tenant's heads, every POLL_MS, until `stop()`; resolves when it stops. */
  run: (tenants: string[], apply: (rows: Heads) => void, stopped: () => boolean) => Promise<void>
}

export function polledHeads (api: AdminClient, seqBase: number, log: (s: string) => void): HeadsSource {
  return {
    run: async (tenants, apply, stopped) => {
      // per tenant, where the node said to ask from next (only heads stored since): a poll answers what
      // changed, not all 2,000 devices of a tenant each time (a node that sends no cursor is asked for all)
      const cursor = new Map<string, string>()
      while (!stopped()) {
        const pollStart = Date.now()
        for (const t of tenants) {
          const from = cursor.get(t)
          const path = `/admin/tenants/${t}/sequences?since=${seqBase}${from === undefined ? '' : `&storedSince=${from}`}`
          apply(await api.getWithHeaders<Heads>(path).then((a) => {
            const next = a.headers.get(STORED_SINCE_HEADER)
            if (next !== null) cursor.set(t, next)
            return a.body
          }, (e: unknown) => { log(`polling stored sequences: ${(e as Error).message}`); return [] }))
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, POLL_MS - (Date.now() - pollStart))))
      }
    },
  }
}

/** Heads another process polls and sends here (`{ heads }` messages on the IPC channel). */
export function pushedHeads (): HeadsSource {
  return {
    run: async (_tenants, apply, stopped) => {
      const onMessage = (m: unknown): void => { if (typeof m === 'object' && m !== null && 'heads' in m) apply((m as { heads: Heads }).heads) }
      process.on('message', onMessage)
      while (!stopped()) await new Promise((resolve) => setTimeout(resolve, POLL_MS))
      process.off('message', onMessage)
    },
  }
}

/** Tracks what is queryable until `stop` is called and nothing is awaited, or 10 s after `stop` (what has not shown up then will not). */
export function pollQueryable (opts: FleetOptions, tally: RunTally, seqBase: number): { stop: () => Promise<void> } {
  let polling = true
  let stoppedAt = 0
  const tenants = [...new Set(opts.fleet.map((d) => d.tenant))]
  const source = opts.heads ?? (opts.api === undefined ? undefined : polledHeads(opts.api, seqBase, opts.log))
  const apply = (rows: Heads): void => {
    const now = Date.now()
    for (const { device, seq } of rows) {
      const list = tally.awaitingQuery.get(device)
      if (list === undefined) continue
      let k = 0
      while (k < list.length && list[k]!.seq <= seq) tally.keep(tally.samples.queryable, now - list[k++]!.at)
      if (k > 0) list.splice(0, k)
    }
  }
  // what has not shown up 10 s after the end will not: stop waiting (it counts as loss in the report)
  const stopped = (): boolean => !polling && (![...tally.awaitingQuery.values()].some((l) => l.length > 0) || Date.now() - stoppedAt > 10_000)
  const poller = source === undefined ? Promise.resolve() : source.run(tenants, apply, stopped)
  return {
    stop: async () => {
      polling = false
      stoppedAt = Date.now()
      await poller
    },
  }
}
