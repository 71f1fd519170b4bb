/**
 * `npm run admin -- <command>`: administers a running ingest node through its
 * admin API (same VF_* settings as `npm start`; the token is read from the
 * data directory).
 *
 *   tenant create <tenant> --name "Care organisation"
 *   tenant list
 *   patient create <tenant> <patient>
 *   device enroll|import|list|bind|gateway|cert|rotate-key|revoke ...   (see USAGE below)
 *   consent grant|withdraw <tenant> <patient> <category> --by <who> [--purpose care] [--source app|professional|paper_form|guardian|admin] [--erase]
 *   rights register|receipts|report|export|erase|hold|unhold|restrict|unrestrict|rectify|retention ...
 *   stats
 *   storage cluster-ddl|cluster-tenant ...   printed for an operator to apply to a ClickHouse cluster; no node needed
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { adminClientFor } from './api/index.ts'
import { loadConfig } from './config/index.ts'
import { clusterDdl, clusterDdlScript, clusterTenantAccessDdl } from './storage/index.ts'

const USAGE = `usage: npm run admin -- <command>
  tenant create <tenant> --name "Care organisation"
  tenant list
  patient create <tenant> <patient>
  device enroll <tenant> <device> --family bracelet|cvitals|calarm|gateway [--patient <patient>] [--gateway <gateway>]
  device import <tenant> <file.ndjson|file.csv> --out <secrets.ndjson>
                                                all or nothing; the one-time secrets and keys go to --out (mode 600)
  device list <tenant>
  device bind <tenant> <device> <patient|none> [--from <ms since epoch>]
  device gateway <tenant> <device> <gateway|none>
  device cert <tenant> <device> [--csr <file.csr>]
  device rotate-key <tenant> <device> [--overlap <seconds>]
  device revoke <tenant> <device>                lost or stolen: disconnected and refused from now on
  security-events <tenant>
  user create <tenant|-> <user> --role platform_admin|tenant_admin|clinician|researcher|responder --password <password>
  tenant dashboard-user <tenant> [--password <password>]   (server mode: read-only ClickHouse user + row policies)
  consent grant|withdraw <tenant> <patient> <category> --by <who> [--purpose care] [--source app|professional|paper_form|guardian|admin]
                                                [--erase: with a withdrawal, also erase the category's stored data]
  rights register <tenant>                      register of processing activities
  rights receipts <tenant>                      erasure receipts
  rights report <tenant> <patient>              access report (what is held, why, for whom, how long, who looked)
  rights export <tenant> <patient> [--format fhir|ndjson|csv]   streamed to stdout
  rights erase <tenant> <patient> [--categories vitals,sleep]
  rights hold|unhold <tenant> <patient> --reason <case>
  rights restrict|unrestrict <tenant> <patient> --reason <text>
  rights rectify <tenant> <patient> --target vital_samples.value --device <d> --seq <n> [--idx <i>] --value <v> --reason <text>
  rights retention <tenant> <category> <days>
  stats
  storage cluster-ddl --cluster <name> [--database <db>] [--after <version>]
                                                the schema as ON CLUSTER DDL (Replicated + Distributed), to stdout
  storage cluster-tenant <tenant> --cluster <name> [--password <password>] [--service-user <user>]
                                                a tenant's dashboard user and row policies ON CLUSTER, to stdout`

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: 'string' }, family: { type: 'string' }, patient: { type: 'string' }, gateway: { type: 'string' },
    from: { type: 'string' }, csr: { type: 'string' }, overlap: { type: 'string' }, role: { type: 'string' }, password: { type: 'string' },
    by: { type: 'string' }, purpose: { type: 'string' }, source: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    format: { type: 'string' }, categories: { type: 'string' }, reason: { type: 'string' }, target: { type: 'string' }, device: { type: 'string' },
    seq: { type: 'string' }, idx: { type: 'string' }, value: { type: 'string' }, erase: { type: 'boolean' }, out: { type: 'string' },
    cluster: { type: 'string' }, database: { type: 'string' }, after: { type: 'string' }, 'service-user': { type: 'string' },
  },
})

function usage (message?: string): never {
  if (message !== undefined) process.stderr.write(`${message}\n`)
  process.stderr.write(`${USAGE}\n`)
  process.exit(2)
}

const [noun, verb, a, b, c] = positionals
if (values.help === true || noun === undefined) usage()
const need = (v: string | undefined, what: string): string => v ?? usage(`missing ${what}`)
if (noun === 'storage') {
  // DDL for a ClickHouse cluster, printed for the operator to apply (clickhouse-client --queries-file); talks to nothing
  const config = loadConfig()
  const database = values.database ?? config.CLICKHOUSE_DATABASE
  const cluster = need(values.cluster, '--cluster <name> (a cluster of the servers\' remote_servers)')
  const after = Number(values.after ?? 0)
  if (!Number.isSafeInteger(after) || after < 0) usage('--after takes a migration version (an integer, 0 = all)')
  try {
    if (verb === 'cluster-ddl') process.stdout.write(clusterDdlScript(clusterDdl({ database, cluster, after })))
    else if (verb === 'cluster-tenant') {
      const password = values.password ?? randomBytes(18).toString('base64url')
      const access = clusterTenantAccessDdl(database, cluster, need(a, '<tenant>'), password, values['service-user'] ?? config.CLICKHOUSE_USER)
      if (values.password === undefined) process.stderr.write(`dashboard password (shown once, stored only as its hash): ${password}\n`)
      process.stdout.write(`-- dashboard user ${access.user} on ClickHouse cluster ${cluster}\n${access.statements.map((s) => `${s};`).join('\n\n')}\n`)
    } else usage(`unknown command: ${positionals.join(' ')}`)
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(1)
  }
  process.exit(0)
}
const api = adminClientFor(loadConfig())
let result: unknown
const patientPath = (): string => `/admin/tenants/${need(a, '<tenant>')}/patients/${need(b, '<patient>')}`
try {
  switch (`${noun} ${verb ?? ''}`) {
    case 'tenant create': result = await api.request('POST', '/admin/tenants', { tenant: need(a, '<tenant>'), displayName: values.name ?? need(a, '<tenant>') }); break
    case 'tenant list': result = await api.request('GET', '/admin/tenants'); break
    case 'tenant dashboard-user':
      result = await api.request('POST', `/admin/tenants/${need(a, '<tenant>')}/dashboard-user`, values.password === undefined ? {} : { password: values.password })
      break
    case 'user create':
      result = await api.request('POST', '/admin/users', {
        tenant: need(a, '<tenant|->') === '-' ? '' : a, user: need(b, '<user>'), role: need(values.role, '--role'), password: need(values.password, '--password'),
      })
      break
    case 'patient create': result = await api.request('POST', `/admin/tenants/${need(a, '<tenant>')}/patients`, { patient: need(b, '<patient>') }); break
    case 'device enroll':
      result = await api.request('POST', `/admin/tenants/${need(a, '<tenant>')}/devices`, {
        device: need(b, '<device>'), family: need(values.family, '--family'), patient: values.patient ?? null, gateway: values.gateway ?? null,
      })
      process.stderr.write('the secret and key below are shown once: hand them to the device now\n')
      break
    case 'device import': {
      const file = need(b, '<file>')
      const out = need(values.out, '--out <secrets.ndjson> (where the one-time secrets go)')
      const type = file.endsWith('.csv') ? 'text/csv' : 'application/x-ndjson'
      const r = await api.upload<{ applied: boolean; enrolled: unknown[]; unchanged: unknown[]; errors: Array<{ line: number; message: string }> }>(
        `/admin/tenants/${need(a, '<tenant>')}/devices:import`, type, readFileSync(file, 'utf8'))
      if (r.status === 422 && r.body.errors.length > 0) {
        for (const e of r.body.errors) process.stderr.write(`${file}:${e.line}: ${e.message}\n`)
        process.stderr.write(`nothing enrolled: ${r.body.errors.length} bad line(s)\n`)
        process.exit(1)
      }
      if (r.status !== 200) throw new Error(`admin API answered ${r.status}: ${JSON.stringify(r.body)}`)
      // the provisioning line's file: one device per line, its secret and payload key; readable by the owner only
      writeFileSync(out, r.body.enrolled.map((e) => JSON.stringify(e)).join('\n') + (r.body.enrolled.length > 0 ? '\n' : ''), { mode: 0o600 })
      result = { enrolled: r.body.enrolled.length, unchanged: r.body.unchanged.length, secrets: out }
      break
    }
    case 'device revoke': result = await api.request('POST', `/admin/tenants/${need(a, '<tenant>')}/devices/${need(b, '<device>')}/revoke`); break
    case 'device list': result = await api.request('GET', `/admin/tenants/${need(a, '<tenant>')}/devices`); break
    case 'device bind': {
      const patient = need(c, '<patient|none>')
      await api.request('POST', `/admin/tenants/${need(a, '<tenant>')}/devices/${need(b, '<device>')}/binding`, {
        patient: patient === 'none' ? null : patient, ...(values.from === undefined ? {} : { validFromMs: Number(values.from) }),
      })
      result = { bound: patient }
      break
    }
    case 'device gateway': {
      const gateway = need(c, '<gateway|none>')
      await api.request('POST', `/admin/tenants/${need(a, '<tenant>')}/devices/${need(b, '<device>')}/gateway`, { gateway: gateway === 'none' ? null : gateway })
      result = { gateway }
      break
    }
    case 'device cert':
      result = await api.request('POST', `/admin/tenants/${need(a, '<tenant>')}/devices/${need(b, '<device>')}/certificate`,
        values.csr === undefined ? {} : { csr: readFileSync(values.csr, 'utf8') })
      break
    case 'device rotate-key':
      result = await api.request('POST', `/admin/tenants/${need(a, '<tenant>')}/devices/${need(b, '<device>')}/keys`,
        values.overlap === undefined ? {} : { overlapSeconds: Number(values.overlap) })
      process.stderr.write('the new key below is shown once: hand it to the device now\n')
      break
    case 'consent grant':
    case 'consent withdraw':
      // the rights route: the same one a tenant administrator uses under /api, audited in the access log
      result = await api.request('POST', `${patientPath()}/consent`, {
        category: need(c, '<category>'), action: verb, recordedBy: need(values.by, '--by'), source: values.source ?? 'admin',
        ...(values.purpose === undefined ? {} : { purpose: values.purpose }), ...(values.erase === true ? { erase: true } : {}),
      })
      break
    case 'rights register': result = await api.request('GET', `/admin/tenants/${need(a, '<tenant>')}/register`); break
    case 'rights receipts': result = await api.request('GET', `/admin/tenants/${need(a, '<tenant>')}/erasure-receipts`); break
    case 'rights report': result = await api.request('GET', `${patientPath()}/access-report`); break
    case 'rights export':
      await api.download(`${patientPath()}/export?format=${values.format ?? 'fhir'}`, process.stdout)
      process.exit(0)
      break
    case 'rights erase':
      result = await api.request('POST', `${patientPath()}/erasure`, values.categories === undefined ? {} : { categories: values.categories.split(',') })
      break
    case 'rights hold':
    case 'rights unhold':
      result = await api.request('POST', `${patientPath()}/hold`, { hold: verb === 'hold', reason: need(values.reason, '--reason') })
      break
    case 'rights restrict':
    case 'rights unrestrict':
      result = await api.request('POST', `${patientPath()}/restriction`, { restrict: verb === 'restrict', reason: need(values.reason, '--reason') })
      break
    case 'rights rectify':
      result = await api.request('POST', `${patientPath()}/rectifications`, {
        target: need(values.target, '--target'), device: need(values.device, '--device'), seq: Number(need(values.seq, '--seq')),
        ...(values.idx === undefined ? {} : { idx: Number(values.idx) }), corrected: Number(need(values.value, '--value')), reason: need(values.reason, '--reason'),
      })
      break
    case 'rights retention':
      result = await api.request('PUT', `/admin/tenants/${need(a, '<tenant>')}/retention/${need(b, '<category>')}`, { days: Number(need(c, '<days>')) })
      break
    case 'stats ': result = await api.request('GET', '/admin/stats'); break
    case `security-events ${verb ?? ''}`: result = await api.request('GET', `/admin/tenants/${need(verb, '<tenant>')}/security-events`); break
    default: usage(`unknown command: ${positionals.join(' ')}`)
  }
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`)
  process.exit(1)
}
process.stdout.write(JSON.stringify(result, null, 2) + '\n')
