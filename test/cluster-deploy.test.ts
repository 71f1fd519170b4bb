/**
 * deploy/cluster/, the operators' compose profile. No Docker engine runs here, so what can be checked
 * without one is checked with programs we did not write: haproxy.cfg with Debian's `haproxy -c`,
 * compose.yaml with PyYAML, the XML with Python's expat and then with ClickHouse itself (chDB loading
 * each node's mounted files as its configuration), and the ingest nodes' environment with the node's
 * own configuration schema. Then the pieces are checked against each other: ports, host names, the
 * balancer's address, the Keeper ensemble, the secrets each file reads.
 *
 * Needs Debian's haproxy (requireTool) and /usr/bin/python3 with python3-yaml; skipped without them,
 * except on CI (CI=true), where they fail.
 */
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addressList, onList } from '../src/addresses.ts'
import { loadConfig, type Config } from '../src/config/index.ts'
import { tempDir } from './support/node.ts'
import { requireTool } from './support/tools.ts'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEPLOY = join(ROOT, 'deploy', 'cluster')
const PYTHON = '/usr/bin/python3'
const CI = process.env['CI'] === 'true'
const CLUSTER = 'vitalflow'

function pythonMissing (): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`
  return spawnSync(PYTHON, ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0 ? null : `${PYTHON} cannot import yaml`
}
const absent = pythonMissing()
if (absent !== null && !CI) console.log(`skipped: compose.yaml and XML checks: ${absent} (apt-get install python3-yaml)`)

/** haproxy.cfg as sections: `frontend mqtts` → its lines, without comments. */
function haproxySections (text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let current: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trimEnd()
    if (line.trim() === '') continue
    if (!/^\s/.test(line)) { current = []; out.set(line.trim(), current) } else current.push(line.trim())
  }
  return out
}

interface Server { name: string; host: string; port: number; options: string[] }
const serversOf = (lines: string[]): Server[] => lines.filter((l) => l.startsWith('server ')).map((l) => {
  const [, name, address, ...options] = l.split(/\s+/) as [string, string, string, ...string[]]
  const [host, port] = address.split(':') as [string, string]
  return { name, host, port: Number(port), options }
})

const withHaproxy = requireTool('haproxy')

describe('deploy/cluster/haproxy/haproxy.cfg', () => {
  withHaproxy('haproxy -c accepts it; its only warnings are names that resolve inside the compose network only', async () => {
    const { stdout, stderr } = await run('haproxy', ['-c', '-f', join(DEPLOY, 'haproxy', 'haproxy.cfg')])
    expect(stdout + stderr).toMatch(/Configuration file is valid/)
    const warnings = (stdout + stderr).split('\n').filter((l) => l.includes('[WARNING]'))
    for (const w of warnings) expect(w).toMatch(/could not resolve address '(ingest\d|ch\d)'/)
    // and a broken one is refused: the check is not a formality
    const dir = tempDir()
    try {
      const bad = join(dir.path, 'bad.cfg')
      writeFileSync(bad, readFileSync(join(DEPLOY, 'haproxy', 'haproxy.cfg'), 'utf8').replace('send-proxy-v2', 'send-proxy-v9'))
      await expect(run('haproxy', ['-c', '-f', bad])).rejects.toThrow(/send-proxy-v9/)
    } finally { dir.remove() }
  }, 30_000)
})

describe('deploy/cluster', () => {
  it.runIf(absent !== null && CI)('has python3-yaml on CI', () => {
    throw new Error(`CI=true but ${absent ?? ''} (apt-get install python3-yaml)`)
  })

  describe.skipIf(absent !== null)('compose.yaml and the ClickHouse XML, as PyYAML and expat read them', () => {
    interface Service { hostname?: string; image?: string; build?: { context: string; dockerfile: string }; environment?: Record<string, string>
      volumes?: string[]; ports?: string[]; command?: string[]; networks?: Record<string, { ipv4_address?: string }> | string[] }
    interface Compose { services: Record<string, Service>; networks: Record<string, { ipam: { config: Array<{ subnet: string }> } }> }
    interface Xml { tag: string; attrib: Record<string, string>; text: string; children: Xml[] }
    let compose: Compose
    const xml = new Map<string, Xml>()
    const haproxy = haproxySections(readFileSync(join(DEPLOY, 'haproxy', 'haproxy.cfg'), 'utf8'))
    const envExample = readFileSync(join(DEPLOY, '.env.example'), 'utf8').split('\n').filter((l) => /^\w+=/.test(l)).map((l) => l.split('=')[0]!)
    /** What docker compose would fill in from .env: a plausible value for each. */
    const vars: Record<string, string> = Object.fromEntries(envExample.map((k) => [k, k === 'VF_MASTER_KEY' ? randomBytes(32).toString('base64url') : `test-${k.toLowerCase()}-${randomBytes(12).toString('hex')}`]))
    const interpolate = (v: string): string => v.replace(/\$\{(\w+)(?::?[?-][^}]*)?\}/g, (_, k: string) => {
      if (vars[k] === undefined) throw new Error(`compose.yaml reads \${${k}}, which .env.example does not list`)
      return vars[k]
    }).replaceAll('$$', '$')
    const child = (e: Xml, tag: string): Xml | undefined => e.children.find((c) => c.tag === tag)
    const all = (e: Xml | undefined, tag: string): Xml[] => e?.children.filter((c) => c.tag === tag) ?? []
    const path = (e: Xml, ...tags: string[]): Xml | undefined => tags.reduce<Xml | undefined>((at, t) => at === undefined ? undefined : child(at, t), e)

    const services = (): Array<[string, Service]> => Object.entries(compose.services)
    const clickhouses = (): Array<[string, Service]> => services().filter(([, s]) => s.image?.startsWith('clickhouse/clickhouse-server') === true && s.hostname !== undefined)
    const ingests = (): Array<[string, Service]> => services().filter(([, s]) => s.environment?.['VF_CLICKHOUSE_URL'] !== undefined)
    const configOf = (s: Service): Config => loadConfig(Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))])))
    /** compose volume `./a/b.xml:/etc/x/y.xml:ro` → [file here, path in the container] */
    const mounts = (s: Service): Array<[string, string]> => (s.volumes ?? []).filter((v) => v.startsWith('./') || v.startsWith('/'))
      .map((v) => { const [from, to] = v.split(':') as [string, string]; return [resolve(DEPLOY, from), to] })

    beforeAll(async () => {
      const files = ['compose.yaml', 'clickhouse/cluster.xml', 'clickhouse/users.xml', 'clickhouse/nodes/ch1.xml', 'clickhouse/nodes/ch2.xml', 'clickhouse/nodes/ch3.xml']
      const { stdout } = await run(PYTHON, [join(ROOT, 'test', 'support', 'read-config.py'), ...files.map((f) => join(DEPLOY, f))], { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })
      const docs = JSON.parse(stdout) as Record<string, unknown>
      compose = docs[join(DEPLOY, 'compose.yaml')] as Compose
      for (const f of files.filter((x) => x.endsWith('.xml'))) xml.set(f, docs[join(DEPLOY, f)] as Xml)
    }, 30_000)

    it('is the profile asked for: 3 ClickHouse nodes, 2 ingest nodes built from the Dockerfile, HAProxy, Redis, the schema applied once', () => {
      expect(clickhouses().map(([, s]) => s.hostname)).toEqual(['ch1', 'ch2', 'ch3'])
      expect(ingests().map(([n]) => n)).toEqual(['ingest1', 'ingest2'])
      for (const [, s] of ingests()) {
        expect(existsSync(join(resolve(DEPLOY, s.build!.context), s.build!.dockerfile))).toBe(true)
        expect(resolve(DEPLOY, s.build!.context)).toBe(resolve(ROOT))
      }
      expect(compose.services['haproxy']?.image).toMatch(/^haproxy:/)
      expect(compose.services['redis']?.image).toMatch(/^redis:/)
      expect(compose.services['schema']?.command?.join(' ')).toContain(`storage cluster-ddl --cluster ${CLUSTER}`)
      for (const [, s] of services()) for (const [file] of mounts(s)) expect(existsSync(file), file).toBe(true)
      for (const f of xml.values()) expect(f.tag).toBe('clickhouse')
    })

    it('the ingest nodes\' environment passes the node\'s own configuration schema, in server mode, trusting only HAProxy for PROXY headers', () => {
      const [, ha] = services().find(([n]) => n === 'haproxy')!
      const balancer = (ha.networks as Record<string, { ipv4_address: string }>)['vf']!.ipv4_address
      expect(onList(addressList(compose.networks['vf']!.ipam.config.map((c) => c.subnet)), balancer)).toBe(true)
      const configs = ingests().map(([, s]) => configOf(s))
      for (const c of configs) {
        expect(c.CLICKHOUSE_URL).toBe('http://haproxy:8123')
        expect(c.CLICKHOUSE_USER).toBe('vitalflow')
        // the cluster the schema service creates, and Redis joining the nodes
        expect(c.CLICKHOUSE_CLUSTER).toBe(CLUSTER)
        expect(c.REDIS_URL).toBe('redis://redis:6379')
        expect(c.PROXY_PROTOCOL_FROM).toEqual([balancer])
        expect(c.MQTT_TCP).toBe(false)
        expect(c.MASTER_KEY).toBe(configs[0]!.MASTER_KEY)
        expect(c.TLS_CERT !== undefined && c.TLS_KEY !== undefined).toBe(true)
      }
      for (const [, s] of ingests()) {
        const tlsDir = mounts(s).find(([, to]) => configOf(s).TLS_CERT!.startsWith(to + '/'))
        expect(tlsDir, 'the TLS files are mounted').toBeDefined()
      }
    })

    it('HAProxy sends PROXY v2 to every ingest node on its MQTT/TLS ports and checks its /readyz; ClickHouse HTTP is balanced over the three', () => {
      const backendOf = (port: number): string[] => {
        const front = [...haproxy].find(([name, lines]) => name.startsWith('frontend ') && lines.includes(`bind :${port}`))
        expect(front, `no frontend on ${port}`).toBeDefined()
        const use = front![1].find((l) => l.startsWith('default_backend '))!.split(' ')[1]!
        return haproxy.get(`backend ${use}`)!
      }
      const nodes = ingests().map(([name, s]) => ({ name, config: configOf(s) }))
      const tls = backendOf(8883)
      expect(serversOf(tls).map((s) => [s.host, s.port])).toEqual(nodes.map((n) => [n.name, n.config.MQTTS_PORT]))
      const mtls = backendOf(8884)
      expect(serversOf(mtls).map((s) => [s.host, s.port])).toEqual(nodes.filter((n) => n.config.MQTTS_MTLS).map((n) => [n.name, n.config.MQTTS_MTLS_PORT]))
      for (const [lines] of [[tls], [mtls]]) {
        expect(lines).toContain('option httpchk GET /readyz')
        for (const s of serversOf(lines!)) {
          expect(s.options).toContain('send-proxy-v2')
          expect(s.options.join(' ')).toContain(`check port ${nodes.find((n) => n.name === s.host)!.config.HTTP_PORT}`)
        }
      }
      expect(compose.services['haproxy']!.ports).toEqual(['8883:8883', '8884:8884'])
      const ch = backendOf(new URL(nodes[0]!.config.CLICKHOUSE_URL!).port === '' ? 80 : Number(new URL(nodes[0]!.config.CLICKHOUSE_URL!).port))
      expect(serversOf(ch).map((s) => `${s.host}:${s.port}`)).toEqual(clickhouses().map(([, s]) => `${s.hostname!}:8123`))
      expect(ch).toContain('option httpchk GET /ping')
    })

    it('the three ClickHouse nodes agree: remote_servers, macros, the Keeper ensemble, what each mounts', () => {
      const shared = xml.get('clickhouse/cluster.xml')!
      const hosts = clickhouses().map(([, s]) => s.hostname!)
      const shards = all(path(shared, 'remote_servers', CLUSTER), 'shard')
      expect(shards.length).toBeGreaterThan(0)
      const replicaHosts = shards.map((sh) => all(sh, 'replica').map((r) => child(r, 'host')!.text))
      expect(replicaHosts.flat().sort()).toEqual([...hosts].sort())
      for (const sh of shards) expect(child(sh, 'internal_replication')?.text).toBe('true')
      expect(path(shared, 'remote_servers', CLUSTER, 'secret')?.attrib['from_env']).toBeDefined()
      const keeperPort = path(shared, 'keeper_server', 'tcp_port')!.text
      expect(all(path(shared, 'zookeeper'), 'node').map((n) => `${child(n, 'host')!.text}:${child(n, 'port')!.text}`)).toEqual(hosts.map((h) => `${h}:${keeperPort}`))
      const raft = all(path(shared, 'keeper_server', 'raft_configuration'), 'server').map((s) => ({ id: child(s, 'id')!.text, host: child(s, 'hostname')!.text }))
      expect(raft.map((r) => r.host)).toEqual(hosts)
      expect(new Set(raft.map((r) => r.id)).size).toBe(raft.length)
      const replicas = new Set<string>()
      for (const [, s] of clickhouses()) {
        const host = s.hostname!
        const own = mounts(s).map(([from, to]) => [from.slice(DEPLOY.length + 1), to])
        expect(own).toEqual([
          ['clickhouse/cluster.xml', '/etc/clickhouse-server/config.d/cluster.xml'],
          [`clickhouse/nodes/${host}.xml`, '/etc/clickhouse-server/config.d/node.xml'],
          ['clickhouse/users.xml', '/etc/clickhouse-server/users.d/vitalflow.xml'],
        ])
        const node = xml.get(`clickhouse/nodes/${host}.xml`)!
        const shard = replicaHosts.findIndex((hs) => hs.includes(host)) + 1
        expect(path(node, 'macros', 'shard')!.text).toBe(String(shard).padStart(2, '0'))
        replicas.add(path(node, 'macros', 'replica')!.text)
        expect(path(node, 'interserver_http_host')!.text).toBe(host)
        expect(path(node, 'keeper_server', 'server_id')!.text).toBe(raft.find((r) => r.host === host)!.id)
      }
      // unique over the cluster, not only per shard: the tables on every node share one Keeper path
      expect(replicas.size).toBe(hosts.length)
    })

    it('every secret a file reads is set where it is read, and every ${VAR} compose.yaml needs is in .env.example', () => {
      const fromEnv = (e: Xml): string[] => [...(e.attrib['from_env'] === undefined ? [] : [e.attrib['from_env']]), ...e.children.flatMap(fromEnv)]
      const read = [...xml.values()].flatMap(fromEnv)
      expect(read.sort()).toEqual(['VF_CLICKHOUSE_PASSWORD', 'VF_CLUSTER_SECRET', 'VF_INTERSERVER_PASSWORD'])
      for (const [, s] of clickhouses()) for (const k of read) expect(s.environment?.[k], k).toBeDefined()
      // interpolate() throws on a variable .env.example does not list
      for (const [, s] of services()) for (const v of Object.values(s.environment ?? {})) interpolate(String(v))
      for (const [, s] of services()) for (const c of s.command ?? []) interpolate(c)
    })

    describe('ClickHouse reads each node\'s files as its configuration (chDB, a process per node)', () => {
      let dir: ReturnType<typeof tempDir>
      beforeAll(() => { dir = tempDir() })
      afterAll(() => dir?.remove())

      interface Loaded {
        clusters: Array<{ cluster: string; shard_num: number; replica_num: number; host_name: string; port: number; internal_replication: number }>
        macros: Array<{ macro: string; substitution: string }>
        users: Array<{ name: string; host_ip: string[]; host_names: string[] }>
        profiles: Array<{ profile_name: string | null; user_name: string | null; setting_name: string | null; value: string | null; inherit_profile: string | null }>
        knownSettings: string[]
      }
      /** The node's mounted files laid out as ClickHouse's configuration directory, loaded by ClickHouse. */
      async function load (s: Service, at: string): Promise<Loaded> {
        mkdirSync(at, { recursive: true })
        // the image's own config.xml and users.xml, reduced to what makes config.d/ and users.d/ load
        writeFileSync(join(at, 'config.xml'), '<clickhouse><user_directories><users_xml><path>users.xml</path></users_xml></user_directories></clickhouse>\n')
        writeFileSync(join(at, 'users.xml'), '<clickhouse><users><default><password></password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota>' +
        '<access_management>1</access_management></default></users><profiles><default/></profiles><quotas><default/></quotas></clickhouse>\n')
        for (const [from, to] of mounts(s).filter(([, t]) => t.startsWith('/etc/clickhouse-server/'))) {
          const target = join(at, to.slice('/etc/clickhouse-server/'.length))
          mkdirSync(dirname(target), { recursive: true })
          copyFileSync(from, target)
        }
        const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]))
        const { stdout } = await run(process.execPath, [join(ROOT, 'test', 'support', 'clickhouse-config.mjs'), at, join(at, 'data')],
          { env: { ...process.env, ...env }, cwd: ROOT, timeout: 60_000 })
        return JSON.parse(stdout) as Loaded
      }

      it('one shard of three replicas, the node\'s own macros, the vitalflow user with its profile, default from localhost only', async () => {
        const hosts = clickhouses().map(([, s]) => s.hostname!)
        for (const [name, s] of clickhouses()) {
          const got = await load(s, join(dir.path, name))
          expect(got.clusters.filter((c) => c.cluster === CLUSTER).map((c) => [c.shard_num, c.replica_num, c.host_name, c.port, c.internal_replication]))
            .toEqual(hosts.map((h, i) => [1, i + 1, h, 9000, 1]))
          expect(Object.fromEntries(got.macros.map((m) => [m.macro, m.substitution]))).toEqual({ shard: '01', replica: s.hostname })
          expect(got.users.find((u) => u.name === 'vitalflow')?.host_ip).toEqual(['::/0'])
          expect(got.users.find((u) => u.name === 'default')).toMatchObject({ host_ip: [], host_names: ['localhost'] })
          expect(got.profiles.find((p) => p.user_name === 'vitalflow')?.inherit_profile).toBe('vitalflow_service')
          const settings = Object.fromEntries(got.profiles.filter((p) => p.profile_name === 'vitalflow_service').map((p) => [p.setting_name!, p.value!]))
          expect(Object.keys(settings).filter((k) => !got.knownSettings.includes(k))).toEqual([])
          expect(settings).toMatchObject({ distributed_foreground_insert: '1', insert_quorum: '2', optimize_skip_unused_shards: '1' })
          // a quorum the shard can reach with one replica down
          expect(Number(settings['insert_quorum'])).toBeLessThan(hosts.length)
        }
      }, 120_000)

      it('and refuses a malformed file: a comment with "--" in it (not XML) stops the node from loading', async () => {
        const [, s] = clickhouses()[0]!
        const broken = join(dir.path, 'broken.xml')
        writeFileSync(broken, readFileSync(join(DEPLOY, 'clickhouse', 'users.xml'), 'utf8').replace('<profiles>', '<!-- npm run admin -- x --><profiles>'))
        const volumes = (s.volumes ?? []).map((v) => v.startsWith('./clickhouse/users.xml:') ? `${broken}:${v.split(':')[1]!}` : v)
        expect(volumes).toContain(`${broken}:/etc/clickhouse-server/users.d/vitalflow.xml`)
        await expect(load({ ...s, volumes }, join(dir.path, 'broken'))).rejects.toThrow()
      }, 60_000)
    })
  })
})
