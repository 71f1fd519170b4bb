/**
 * Admin HTTP API (bearer token): tenants, patients, device enrollment, consent
 * recording, and ingest statistics. The admin CLI and the simulator use it.
 * Responses never echo health values; patient ids appear only where the
 * administrator asked for them and are never logged.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Registry as MetricsRegistry } from 'prom-client'
import { z } from 'zod'
import { CATEGORIES, PURPOSES } from '../consent/index.ts'
import { ID_PATTERN } from '../ids.ts'
import { FAMILIES, ROLES, type Registry } from '../registry/index.ts'
import { bearerCheck } from './bearer.ts'
import { clientError, frameworkError, registerAnswers } from './http-answers.ts'
import { registerClinicianApi, type ClinicianDeps } from './clinician.ts'
import { rightsRoutes } from './rights-routes.ts'
import { openApiDocument } from './openapi.ts'
import { createWebApp } from './web.ts'
import { randomBytes } from 'node:crypto'
import { tenantAccessDdl, type Storage, type TableName } from '../storage/index.ts'

export interface AdminApiDeps {
  registry: Registry
  storage: Storage
  adminToken: string
  /** Counters of the ingest path, returned as they are. */
  stats: () => unknown
  /** What a device or the simulator needs to connect. */
  connectionInfo: () => unknown
  /** Prometheus registry served at /metrics. */
  metrics?: MetricsRegistry
  /** Bearer token of /metrics; the admin token when absent. */
  metricsToken?: string
  /** False while the node starts or drains: load balancers should stop sending devices. */
  ready?: () => boolean
  /** ClickHouse user the node itself connects as (server mode), kept able to read every row. */
  serviceUser?: string
  /** The clinician API (/api); absent = admin API only. */
  clinician?: ClinicianDeps
}

const id = z.string().regex(ID_PATTERN)
const TenantBody = z.object({ tenant: id, displayName: z.string().min(1).max(200) })
const PatientBody = z.object({ patient: id })
const DeviceBody = z.object({ device: id, family: z.enum(FAMILIES), patient: id.nullish(), gateway: id.nullish() })
const BindingBody = z.object({ patient: id.nullable(), validFromMs: z.number().int().min(0).optional() })
const GatewayBody = z.object({ gateway: id.nullable() })
const ConsentBody = z.object({
  patient: id,
  category: z.enum(CATEGORIES),
  purpose: z.enum(PURPOSES).default('care'),
  action: z.enum(['grant', 'withdraw']),
  recordedBy: z.string().min(1).max(100),
  source: z.enum(['app', 'professional', 'paper_form', 'admin']).default('admin'),
  validFromMs: z.number().int().min(0).optional(),
})
const TenantParams = z.object({ tenant: id })
const DashboardBody = z.object({ password: z.string().min(16).max(200).optional() })
const UserBody = z.object({ tenant: id.or(z.literal('')), user: id, role: z.enum(ROLES), password: z.string().min(12).max(200) })
const DeviceParams = z.object({ tenant: id, device: id })
const RotateBody = z.object({ overlapSeconds: z.number().int().min(0).max(30 * 86_400).default(86_400) })
const CertificateBody = z.object({ csr: z.string().startsWith('-----BEGIN CERTIFICATE REQUEST-----').max(8192).optional() })
const SinceQuery = z.object({ since: z.coerce.number().int().min(0).default(0) })

const TIME_COLUMN: Partial<Record<TableName, string>> = {
  vital_samples: 'ingested_at', spot_measurements: 'ingested_at', alarm_events: 'ingested_at', device_status: 'ingested_at', rejected_messages: 'ts',
}

function parse<T> (schema: z.ZodType<T>, value: unknown, reply: FastifyReply): T | undefined {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  void reply.code(400).send({ error: 'ING_ERR_INVALID', issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) })
  return undefined
}

export function createAdminApi (deps: AdminApiDeps): FastifyInstance {
  // errors met before routing and requests the HTTP parser refuses get the same answers as the rest
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, frameworkErrors: frameworkError, clientErrorHandler: clientError })
  // the care web app (web/dist), when built: static files on this port, over the same API
  const web = createWebApp()
  registerAnswers(app, web?.fallback)
  web?.register(app)
  const isAdmin = bearerCheck(deps.adminToken)
  // /metrics names tenants (with VF_METRICS_TENANT_LABELS) and shows load: operators only. A bearer
  // token on the same port rather than a separate loopback listener: one listener to run and firewall,
  // Prometheus sends it with `authorization`, and a scraper on another host still works.
  const isScraper = bearerCheck(deps.metricsToken ?? deps.adminToken)

  if (deps.clinician !== undefined) {
    const doc = openApiDocument(registerClinicianApi(app, deps.clinician))
    app.get('/api/openapi.json', async () => doc)
  }

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_req, reply) => {
    const ready = deps.ready?.() ?? true
    return reply.code(ready ? 200 : 503).send({ ready })
  })
  app.get('/metrics', async (req, reply) => {
    if (!isScraper(req.headers.authorization)) return reply.code(401).header('www-authenticate', 'Bearer realm="metrics"').send({ error: 'ING_ERR_AUTH' })
    if (deps.metrics === undefined) return reply.code(404).send()
    return reply.type(deps.metrics.contentType).send(await deps.metrics.metrics())
  })

  app.register(async (admin) => {
    admin.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (!isAdmin(req.headers.authorization)) return reply.code(401).send({ error: 'ING_ERR_AUTH' })
    })

    admin.get('/connection', async () => deps.connectionInfo())

    admin.get('/tenants', async () => deps.registry.listTenants())

    admin.post('/tenants', async (req, reply) => {
      const b = parse(TenantBody, req.body, reply)
      if (b === undefined) return reply
      return reply.code(201).send({ tenant: await deps.registry.createTenant(b.tenant, b.displayName) })
    })

    admin.post('/tenants/:tenant/patients', async (req, reply) => {
      const p = parse(TenantParams, req.params, reply)
      const b = parse(PatientBody, req.body, reply)
      if (p === undefined || b === undefined) return reply
      return reply.code(201).send({ patient: await deps.registry.createPatient(p.tenant, b.patient) })
    })

    // server mode: a read-only ClickHouse user, profile, quota and row policies for a tenant's dashboards
    admin.post('/tenants/:tenant/dashboard-user', async (req, reply) => {
      const p = parse(TenantParams, req.params, reply)
      const b = parse(DashboardBody, req.body ?? {}, reply)
      if (p === undefined || b === undefined) return reply
      if (!deps.registry.hasTenant(p.tenant)) return reply.code(404).send({ error: 'ING_ERR_NOT_FOUND', message: 'unknown tenant' })
      const password = b.password ?? randomBytes(24).toString('base64url')
      const { conn } = deps.storage
      const access = tenantAccessDdl(conn.database, p.tenant, password, deps.serviceUser ?? 'default')
      if (conn.mode === 'server') for (const statement of access.statements) await conn.client.command({ query: statement })
      return reply.code(201).send({
        user: access.user, password, applied: conn.mode === 'server', statements: access.statements,
        ...(conn.mode === 'server' ? {} : { message: 'embedded ClickHouse (chDB) has no users or row policies: apply these statements on a ClickHouse server' }),
      })
    })

    admin.post('/users', async (req, reply) => {
      const b = parse(UserBody, req.body, reply)
      if (b === undefined) return reply
      if (b.tenant !== '' && !deps.registry.hasTenant(b.tenant)) return reply.code(404).send({ error: 'ING_ERR_NOT_FOUND', message: 'unknown tenant' })
      if (deps.clinician === undefined) return reply.code(404).send({ error: 'ING_ERR_NOT_FOUND' })
      const p = await deps.clinician.users.create(b.tenant, b.user, b.role, b.password)
      return reply.code(201).send(p)
    })

    admin.get('/tenants/:tenant/devices', async (req, reply) => {
      const p = parse(TenantParams, req.params, reply)
      if (p === undefined) return reply
      if (!deps.registry.hasTenant(p.tenant)) return reply.code(404).send({ error: 'ING_ERR_NOT_FOUND' })
      return deps.registry.listDevices(p.tenant).map((d) => ({ device: d.device, family: d.family, patient: d.patient, gateway: d.gateway, keyIds: [...d.keys.keys()] }))
    })

    admin.post('/tenants/:tenant/devices', async (req, reply) => {
      const p = parse(TenantParams, req.params, reply)
      const b = parse(DeviceBody, req.body, reply)
      if (p === undefined || b === undefined) return reply
      return reply.code(201).send(await deps.registry.enrollDevice({ tenant: p.tenant, device: b.device, family: b.family, patient: b.patient ?? null, gateway: b.gateway ?? null }))
    })

    admin.post('/tenants/:tenant/devices/:device/binding', async (req, reply) => {
      const p = parse(DeviceParams, req.params, reply)
      const b = parse(BindingBody, req.body, reply)
      if (p === undefined || b === undefined) return reply
      await deps.registry.bindDevice(p.tenant, p.device, b.patient, b.validFromMs)
      return reply.code(204).send()
    })

    admin.post('/tenants/:tenant/devices/:device/gateway', async (req, reply) => {
      const p = parse(DeviceParams, req.params, reply)
      const b = parse(GatewayBody, req.body, reply)
      if (p === undefined || b === undefined) return reply
      await deps.registry.setGateway(p.tenant, p.device, b.gateway)
      return reply.code(204).send()
    })

    admin.post('/tenants/:tenant/devices/:device/keys', async (req, reply) => {
      const p = parse(DeviceParams, req.params, reply)
      const b = parse(RotateBody, req.body ?? {}, reply)
      if (p === undefined || b === undefined) return reply
      return reply.code(201).send(await deps.registry.rotateKey(p.tenant, p.device, b.overlapSeconds * 1000))
    })

    admin.post('/tenants/:tenant/devices/:device/certificate', async (req, reply) => {
      const p = parse(DeviceParams, req.params, reply)
      const b = parse(CertificateBody, req.body ?? {}, reply)
      if (p === undefined || b === undefined) return reply
      return reply.code(201).send(await deps.registry.issueCertificate(p.tenant, p.device, b.csr))
    })

    admin.post('/tenants/:tenant/consent', async (req, reply) => {
      const p = parse(TenantParams, req.params, reply)
      const b = parse(ConsentBody, req.body, reply)
      if (p === undefined || b === undefined) return reply
      const e = await deps.registry.recordConsent({ tenant: p.tenant, ...b })
      return reply.code(201).send({ version: e.version, recordedAtMs: e.recordedAtMs })
    })

    admin.get('/stats', async () => deps.stats())

    // the data-subject rights, for the platform administrator and the admin CLI
    const rights = deps.clinician?.rights
    if (rights !== undefined) {
      for (const r of rightsRoutes({ rights, registry: deps.registry, storage: deps.storage })) {
        admin.route({
          method: r.method,
          url: `/tenants/:tenant${r.path.replace(/\{(\w+)\}/g, ':$1')}`,
          handler: async (req, reply) => {
            const p = parse(TenantParams, req.params, reply)
            if (p === undefined) return reply
            if (!deps.registry.hasTenant(p.tenant)) return await reply.code(404).send({ error: 'ING_ERR_NOT_FOUND', message: 'unknown tenant' })
            return await r.handler(p.tenant, { user: 'platform-admin', role: 'platform_admin', remoteAddress: req.ip }, { params: req.params, query: req.query, body: req.body }, reply)
          },
        })
      }
    }

    // security events (bursts of refused input) of one tenant, newest first
    admin.get('/tenants/:tenant/security-events', async (req, reply) => {
      const p = parse(TenantParams, req.params, reply)
      const q = parse(SinceQuery, req.query, reply)
      if (p === undefined || q === undefined) return reply
      await deps.storage.flush()
      const { client, table } = deps.storage.conn
      const rs = await client.query({
        query: `SELECT source, reasons, refusals, toUnixTimestamp64Milli(first_ts) AS firstMs, toUnixTimestamp64Milli(ts) AS lastMs
          FROM ${table('security_events')} WHERE tenant_id = {tenant:String} AND ts >= fromUnixTimestamp64Milli({since:Int64}) ORDER BY ts DESC LIMIT 1000`,
        query_params: { tenant: p.tenant, since: q.since },
        format: 'JSONEachRow',
      })
      return (await rs.json<Record<string, unknown>>()).map((r) => ({ ...r, firstMs: Number(r['firstMs']), lastMs: Number(r['lastMs']) }))
    })

    // the highest stored sequence number per device of a tenant (from `since` on): when a device's message became queryable
    admin.get('/tenants/:tenant/sequences', async (req, reply) => {
      const p = parse(TenantParams, req.params, reply)
      const q = parse(SinceQuery, req.query, reply)
      if (p === undefined || q === undefined) return reply
      const { client, table } = deps.storage.conn
      const rs = await client.query({
        // (no alias named like a column: ClickHouse would read it in WHERE)
        // device_heads: a row per device and unmerged part, not per message
        query: `SELECT device_id AS device, toString(max(seq)) AS top FROM ${table('device_heads')} WHERE tenant_id = {tenant:String} AND seq >= {since:UInt64} GROUP BY device_id`,
        query_params: { tenant: p.tenant, since: q.since }, format: 'JSONEachRow',
      })
      return (await rs.json<{ device: string; top: string }>()).map((r) => ({ device: r.device, seq: Number(r.top) }))
    })

    // rows stored per table for one tenant, optionally since an ingest time (ms)
    admin.get('/tenants/:tenant/rows', async (req, reply) => {
      const p = parse(TenantParams, req.params, reply)
      const q = parse(SinceQuery, req.query, reply)
      if (p === undefined || q === undefined) return reply
      await deps.storage.flush()
      const { client, table } = deps.storage.conn
      const parts = (Object.keys(TIME_COLUMN) as TableName[]).map((t) =>
        `SELECT '${t}' AS table, count() AS rows FROM ${table(t)} WHERE tenant_id = {tenant:String} AND ${TIME_COLUMN[t]} >= fromUnixTimestamp64Milli({since:Int64})`)
      const rs = await client.query({ query: parts.join(' UNION ALL '), query_params: { tenant: p.tenant, since: q.since }, format: 'JSONEachRow' })
      const out: Record<string, number> = {}
      for (const r of await rs.json<{ table: string; rows: string | number }>()) out[r.table] = Number(r.rows)
      return out
    })
  }, { prefix: '/admin' })

  return app
}
