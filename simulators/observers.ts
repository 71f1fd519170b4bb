/**
 * What the fleet watches from outside the devices: responders subscribed to
 * their tenant's alerts (alarm → responder latency) and a poll of the highest
 * stored sequence number per device (device send → queryable latency).
 */
import mqtt, { type MqttClient } from 'mqtt'
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
        if (at !== undefined) { tally.keep(tally.samples.alarm, Date.now() - at); tally.awaitingResponder.delete(`${a.device}/${a.seq}`) }
      })
      responders.push(c)
    } catch {
      tally.r.connectFailures++
    }
  }
  return responders
}

/** Polls what is queryable until `stop` is called and nothing is awaited, or 10 s after `stop` (what has not shown up then will not). */
export function pollQueryable (opts: FleetOptions, tally: RunTally, seqBase: number): { stop: () => Promise<void> } {
  let polling = true
  let stoppedAt = 0
  const tenants = [...new Set(opts.fleet.map((d) => d.tenant))]
  const api = opts.api
  const poller = (async () => {
    if (api === undefined) return
    while (polling || [...tally.awaitingQuery.values()].some((l) => l.length > 0)) {
      const pollStart = Date.now()
      for (const t of tenants) {
        const rows = await api.request<Array<{ device: string; seq: number }>>('GET', `/admin/tenants/${t}/sequences?since=${seqBase}`).catch((e: unknown) => { opts.log(`polling stored sequences: ${(e as Error).message}`); return [] })
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
      if (!polling && Date.now() - stoppedAt > 10_000) break
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, POLL_MS - (Date.now() - pollStart))))
    }
  })()
  return {
    stop: async () => {
      polling = false
      stoppedAt = Date.now()
      await poller
    },
  }
}
