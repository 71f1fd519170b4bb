/**
 * A real haproxy (Debian) in TCP mode in front of several nodes, as the cluster tests and
 * bench/cluster.bench.ts run it: one frontend on a free loopback port, one backend with a server
 * per node, a PROXY protocol header (v1 or v2) from a source address of the caller's choice.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { freePort } from './redis.ts'

export interface Haproxy { port: number; proc: ChildProcess; stop: () => Promise<void> }

export interface HaproxyOptions {
  /** Where its configuration is written. */
  dir: string
  servers: Array<{ name: string; port: number }>
  /** roundrobin (default), leastconn, source... */
  balance?: string
  /** PROXY protocol header to the servers: 'v1' (send-proxy), 'v2' (send-proxy-v2), none when unset. */
  proxy?: 'v1' | 'v2'
  /** The address haproxy connects to the servers from (the nodes' VF_PROXY_PROTOCOL_FROM). */
  source?: string
  maxconn?: number
}

export async function startHaproxy (o: HaproxyOptions): Promise<Haproxy> {
  const port = await freePort()
  const cfg = join(o.dir, 'haproxy.cfg')
  const send = o.proxy === undefined ? '' : o.proxy === 'v1' ? ' send-proxy' : ' send-proxy-v2'
  const source = o.source === undefined ? '' : ` source ${o.source}`
  writeFileSync(cfg, [
    'global', `  maxconn ${o.maxconn ?? 1000}`, '  nbthread 1',
    'defaults', '  mode tcp', `  maxconn ${o.maxconn ?? 1000}`, '  timeout connect 5s', '  timeout client 120s', '  timeout server 120s',
    'frontend front', `  bind 127.0.0.1:${port}`, '  default_backend nodes',
    'backend nodes', `  balance ${o.balance ?? 'roundrobin'}`,
    ...o.servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port}${send}${source}`),
    '',
  ].join('\n'))
  const proc = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' })
  // listening once a TCP connection to the frontend is taken
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`haproxy exited ${proc.exitCode}`)
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => { resolve(false) })
    })
    if (up) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    port, proc,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const exited = once(proc, 'exit')
      proc.kill('SIGTERM')
      await exited
    },
  }
}
