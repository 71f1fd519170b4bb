/**
 * Admin HTTP API (bearer token): tenants, patients, device enrollment, the
 * data-subject rights (consent among them: the same routes as under /api),
 * stored rows and sequences, and ingest statistics. The admin CLI and the
 * simulator use it. Every route declares its schemas once; fastify validates
 * with them and @fastify/swagger documents them (/admin/openapi.json).
 * Responses never echo health values; patient ids appear only where the
 * administrator asked for them and are never logged.
 */
import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Registry as MetricsRegistry } from 'prom-client'
import { z } from 'zod'
import { randomBytes } from 'node:crypto'
import { VitalflowError } from '../errors.ts'
import { STORED_SINCE_HEADER } from './admin-client.ts'
import { CONSENT_CATEGORIES, PURPOSES } from '../consent/index.ts'
import { audit } from '../rights/index.ts'
import { FAMILIES, IMPORT_MAX_BYTES, parseImport, ROLES, type ImportFormat, type Registry } from '../registry/index.ts'
import { applyDashboardUser, rowsPerTable, securityEvents, storedHeadsSince, type Storage } from '../storage/index.ts'
import { bearerCheck } from './bearer.ts'
import { clientError, frameworkError, registerAnswers } from './http-answers.ts'
import { registerClinicianApi, type ClinicianDeps } from './clinician.ts'
import { FleetQuery, type FleetView } from './fleet-view.ts'
import { rightsRoutes } from './rights-routes.ts'
import { id, optionalBody } from './schemas.ts'
import { createWebApp } from './web.ts'

export interface AdminApiDeps {
  registry: Registry
  storage: Storage
  adminToken: string
  /** The fleet view, from memory. */
  fleet: FleetView
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

const TenantBody = z.object({ tenant: id, displayName: z.string().min(1).max(200) })
const PatientBody = z.object({ patient: id })
const PatientImportBody = z.object({
  patients: z.array(z.object({
    patient: id,
    grants: z.array(z.object({ category: z.enum(CONSENT_CATEGORIES), purpose: z.enum(PURPOSES).optional(), validFromMs: z.number().int().min(0).optional() })).max(CONSENT_CATEGORIES.length * PURPOSES.length).optional(),
  })).min(1).max(50_000),
  source: z.enum(['app', 'professional', 'paper_form', 'admin']).default('paper_form'),
  recordedBy: z.string().min(1).max(100),
})
const DeviceBody = z.object({ device: id, family: z.enum(FAMILIES), patient: id.nullish(), gateway: id.nullish() })
const BindingBody = z.object({ patient: id.nullable(), validFromMs: z.number().int().min(0).optional() })
const GatewayBody = z.object({ gateway: id.nullable() })
const TenantParams = z.object({ tenant: id })
const DashboardBody = optionalBody(z.object({ password: z.string().min(16).max(200).optional() }))
const UserBody = z.object({ tenant: id.or(z.literal('')), user: id, role: z.enum(ROLES), password: z.string().min(12).max(200) })
const DeviceParams = z.object({ tenant: id, device: id })
const RotateBody = optionalBody(z.object({ overlapSeconds: z.number().int().min(0).max(30 * 86_400).default(86_400) }))
const CertificateBody = optionalBody(z.object({ csr: z.string().startsWith('-----BEGIN CERTIFICATE REQUEST-----').max(8192).optional() }))
const SinceQuery = z.object({ since: z.coerce.number().int().min(0).default(0) })
const SequencesQuery = SinceQuery.extend({
  storedSince: z.coerce.number().int().min(0).optional().describe('only devices whose head was stored from this time on (ms since the epoch): what a poller has not seen yet'),
})

type Operation = Record<string, unknown> & { parameters?: unknown[]; requestBody?: unknown; security?: unknown[] }

/** The answers every operation may give besides its own (the error handler's), by what the operation takes. */
function withAnswers (path: string, op: Operation): Operation {
  const responses: Record<string, { description: string }> = { 200: { description: 'OK' } }
  if (op.parameters !== undefined || op.requestBody !== undefined) responses[400] = { description: 'ING_ERR_INVALID: refused by the route\'s schema (issues name where and what)' }
  if (op.security?.length !== 0) {
    responses[401] = { description: 'ING_ERR_AUTH: no valid session or token' }
    if (path.startsWith('/api/')) responses[403] = { description: 'ING_ERR_ROLE: the role (x-roles) may not call this' }
  }
  if (path.includes('{')) responses[404] = { description: 'ING_ERR_NOT_FOUND: not found (also: another tenant\'s id)' }
  return { ...op, responses }
}

/** The OpenAPI document of every route with a schema; /api/openapi.json and /admin/openapi.json are its two halves. */
function documentOf (full: Record<string, unknown>, prefix: '/api/' | '/admin/'): Record<string, unknown> {
  const paths = (full['paths'] ?? {}) as Record<string, Record<string, Operation>>
  const mine = Object.fromEntries(Object.entries(paths).filter(([path]) => path.startsWith(prefix))
    .map(([path, ops]) => [path, Object.fromEntries(Object.entries(ops).map(([method, op]) => [method, withAnswers(path, op)]))]))
  return prefix === '/api/'
    ? { ...full, info: { title: 'vitalflow clinician API', version: '1' }, components: { securitySchemes: { session: { type: 'http', scheme: 'bearer' } } }, security: [{ session: [] }], paths: mine }
    : { ...full, info: { title: 'vitalflow admin API', version: '1' }, components: { securitySchemes: { admin: { type: 'http', scheme: 'bearer' } } }, security: [{ admin: [] }], paths: mine }
}

export function createAdminApi (deps: AdminApiDeps): FastifyInstance {
  // errors met before routing and requests the HTTP parser refuses get the same answers as the rest
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, frameworkErrors: frameworkError, clientErrorHandler: clientError })
  // fastify validates every request with its route's own zod schemas; @fastify/swagger documents the same schemas
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  void app.register(swagger, {
    openapi: { openapi: '3.1.0', info: { title: 'vitalflow', version: '1' } },
    // routes without a schema of their own (the web app's files, health, metrics, the documents) are left out
    transform: (route) => route.schema === undefined || route.schema.hide === true ? { schema: { hide: true }, url: route.url } : jsonSchemaTransform(route),
  })
  // the care web app (web/dist), when built: static files on this port, over the same API
  const web = createWebApp()
  registerAnswers(app, web?.fallback)
  web?.register(app)
  const isAdmin = bearerCheck(deps.adminToken)
  // /metrics names tenants (with VF_METRICS_TENANT_LABELS) and shows load: operators only. A bearer
  // token on the same port rather than a separate loopback listener: one listener to run and firewall,
  // Prometheus sends it with `authorization`, and a scraper on another host still works.
  const isScraper = bearerCheck(deps.metricsToken ?? deps.adminToken)

  const clinician = deps.clinician
  if (clinician !== undefined) {
    void app.register(async (api) => { registerClinicianApi(api, clinician) })
    app.get('/api/openapi.json', async () => documentOf(app.swagger() as unknown as Record<string, unknown>, '/api/'))
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

  void app.register(async (plain) => {
    plain.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (!isAdmin(req.headers.authorization)) return reply.code(401).send({ error: 'ING_ERR_AUTH' })
    })
    const admin = plain.withTypeProvider<ZodTypeProvider>()
    const requireTenant = (tenant: string): void => {
      if (!deps.registry.hasTenant(tenant)) throw new VitalflowError('ING_ERR_NOT_FOUND', 'unknown tenant')
    }

    admin.get('/openapi.json', async () => documentOf(app.swagger() as unknown as Record<string, unknown>, '/admin/'))

    admin.get('/connection', { schema: { summary: 'What a device or the simulator needs to connect' } }, async () => deps.connectionInfo())

    admin.get('/tenants', { schema: { summary: 'Every tenant' } }, async () => deps.registry.listTenants())

    admin.post('/tenants', { schema: { summary: 'Create a tenant', body: TenantBody } }, async (req, reply) =>
      reply.code(201).send({ tenant: await deps.registry.createTenant(req.body.tenant, req.body.displayName) }))

    admin.post('/tenants/:tenant/patients::import', {
      bodyLimit: IMPORT_MAX_BYTES,
      schema: {
        summary: 'Register a list of patients with their consent grants (a signed form each, recorded by the person named), in one go; idempotent by patient and by grant in force',
        params: TenantParams, body: PatientImportBody,
      },
    }, async (req) => {
      const { tenant } = req.params
      const result = await deps.registry.importPatients(tenant, req.body.patients, { recordedBy: req.body.recordedBy, source: req.body.source })
      // the grants are an action on each patient's data: one access-log row per patient, in one insert
      await audit(deps.storage.conn, tenant, { user: 'platform-admin', role: 'platform_admin', remoteAddress: req.ip }, [...new Set(req.body.patients.map((p) => p.patient))], 'consent_import', `${result.grants} grants`)
      return result
    })
    admin.post('/tenants/:tenant/patients', { schema: { summary: 'Register a patient (pseudonymous id)', params: TenantParams, body: PatientBody } }, async (req, reply) =>
      reply.code(201).send({ patient: await deps.registry.createPatient(req.params.tenant, req.body.patient) }))

    // server mode: a read-only ClickHouse user, profile, quota and row policies for a tenant's dashboards
    admin.post('/tenants/:tenant/dashboard-user', {
      schema: { summary: 'Read-only ClickHouse user and row policies of a tenant\'s dashboards (applied in server mode)', params: TenantParams, body: DashboardBody },
    }, async (req, reply) => {
      requireTenant(req.params.tenant)
      const password = req.body.password ?? randomBytes(24).toString('base64url')
      const access = await applyDashboardUser(deps.storage, req.params.tenant, password, deps.serviceUser ?? 'default')
      return reply.code(201).send({
        user: access.user, password, applied: access.applied, statements: access.statements,
        ...(access.applied ? {} : { message: 'embedded ClickHouse (chDB) has no users or row policies: apply these statements on a ClickHouse server' }),
      })
    })

    admin.post('/users', { schema: { summary: 'Create a personal account (tenant \'\' for a platform administrator)', body: UserBody } }, async (req, reply) => {
      const b = req.body
      if (b.tenant !== '') requireTenant(b.tenant)
      if (deps.clinician === undefined) throw new VitalflowError('ING_ERR_NOT_FOUND', 'no clinician API on this node')
      return reply.code(201).send(await deps.clinician.users.create(b.tenant, b.user, b.role, b.password))
    })

    admin.get('/tenants/:tenant/devices', {
      schema: { summary: 'Enrolled devices of a tenant with their binding, last seen, battery, firmware, key and certificate expiry; filtered and paged (as /api/devices)', params: TenantParams, querystring: FleetQuery },
    }, async (req) => {
      requireTenant(req.params.tenant)
      return deps.fleet.page(req.params.tenant, req.query, { withPatient: true })
    })

    admin.post('/tenants/:tenant/devices', { schema: { summary: 'Enroll a device; its secret and key are shown once', params: TenantParams, body: DeviceBody } }, async (req, reply) => {
      const b = req.body
      return reply.code(201).send(await deps.registry.enrollDevice({ tenant: req.params.tenant, device: b.device, family: b.family, patient: b.patient ?? null, gateway: b.gateway ?? null }))
    })

    // bulk enrolment: an NDJSON or CSV file of devices in the body (up to IMPORT_MAX_BYTES), all or nothing
    const IMPORT_TYPES: Record<string, ImportFormat> = { 'application/x-ndjson': 'ndjson', 'application/jsonl': 'ndjson', 'text/csv': 'csv' }
    admin.addContentTypeParser(Object.keys(IMPORT_TYPES), { parseAs: 'string', bodyLimit: IMPORT_MAX_BYTES }, (_req, body, done) => { done(null, body) })
    admin.post('/tenants/:tenant/devices::import', {
      bodyLimit: IMPORT_MAX_BYTES,
      schema: {
        summary: 'Enrol a file of devices (NDJSON or CSV: device, family, patient, gateway), all or nothing and idempotent by device id; answers every enrolled device\'s one-time secret and key, or every bad line (422)',
        params: TenantParams, body: z.string(),
      },
    }, async (req, reply) => {
      requireTenant(req.params.tenant)
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
      const format = IMPORT_TYPES[type]
      if (format === undefined) throw new VitalflowError('ING_ERR_INVALID', `send the file as ${Object.keys(IMPORT_TYPES).join(' or ')}`)
      const parsed = parseImport(req.body, format)
      if (parsed.errors.length > 0) return await reply.code(422).send({ applied: false, enrolled: [], unchanged: [], errors: parsed.errors })
      const result = await deps.registry.importDevices(req.params.tenant, parsed.items)
      return await reply.code(result.applied ? 200 : 422).send(result)
    })

    admin.post('/tenants/:tenant/devices/:device/binding', { schema: { summary: 'Bind a device to a patient (or none) from a time on', params: DeviceParams, body: BindingBody } }, async (req, reply) => {
      await deps.registry.bindDevice(req.params.tenant, req.params.device, req.body.patient, req.body.validFromMs)
      return reply.code(204).send()
    })

    admin.post('/tenants/:tenant/devices/:device/gateway', { schema: { summary: 'Set the gateway phone that may publish for a device', params: DeviceParams, body: GatewayBody } }, async (req, reply) => {
      await deps.registry.setGateway(req.params.tenant, req.params.device, req.body.gateway)
      return reply.code(204).send()
    })

    admin.post('/tenants/:tenant/devices/:device/keys', { schema: { summary: 'Rotate a device key, the old one valid for an overlap', params: DeviceParams, body: RotateBody } }, async (req, reply) =>
      reply.code(201).send(await deps.registry.rotateKey(req.params.tenant, req.params.device, req.body.overlapSeconds * 1000)))

    admin.post('/tenants/:tenant/devices/:device/revoke', { schema: { summary: 'Revoke a lost or stolen device: disconnected on every listener, refused at CONNECT and for every message after (no way back: enrol a replacement)', params: DeviceParams } }, async (req) =>
      await deps.registry.revokeDevice(req.params.tenant, req.params.device))

    admin.post('/tenants/:tenant/devices/:device/certificate', { schema: { summary: 'Issue a client certificate for mutual TLS (for a CSR, or with a new key)', params: DeviceParams, body: CertificateBody } }, async (req, reply) =>
      reply.code(201).send(await deps.registry.issueCertificate(req.params.tenant, req.params.device, req.body.csr)))

    admin.get('/stats', { schema: { summary: 'Counters of the ingest path' } }, async () => deps.stats())

    // the data-subject rights (consent among them), for the platform administrator and the admin CLI: the same table as under /api
    const rights = deps.clinician?.rights
    if (rights !== undefined) {
      for (const r of rightsRoutes({ rights, registry: deps.registry, storage: deps.storage })) {
        admin.route({
          method: r.method,
          url: `/tenants/:tenant${r.path.replace(/\{(\w+)\}/g, ':$1')}`,
          schema: {
            summary: r.summary, params: TenantParams.extend(r.params?.shape ?? {}),
            ...(r.query === undefined ? {} : { querystring: r.query }),
            ...(r.body === undefined ? {} : { body: r.body }),
          },
          handler: async (req, reply) => {
            // (the table's params, typed per action, with the tenant of the path beside them)
            const { tenant, ...params } = req.params as z.output<typeof TenantParams> & Record<string, unknown>
            requireTenant(tenant)
            return await r.handler({ tenant, actor: { user: 'platform-admin', role: 'platform_admin', remoteAddress: req.ip }, params, query: req.query, body: req.body }, reply)
          },
        })
      }
    }

    admin.get('/tenants/:tenant/security-events', { schema: { summary: 'Security events (bursts of refused input) of a tenant, newest first', params: TenantParams, querystring: SinceQuery } }, async (req) =>
      await securityEvents(deps.storage, req.params.tenant, req.query.since))

    admin.get('/tenants/:tenant/sequences', {
      schema: {
        summary: 'Highest stored sequence number per device (from `since` on; with `storedSince`, only heads stored from then on). The `x-vitalflow-stored-since` header of the answer is the `storedSince` to poll with next',
        params: TenantParams, querystring: SequencesQuery,
      },
    }, async (req, reply) => {
      const { heads, next } = await storedHeadsSince(deps.storage, req.params.tenant, req.query.since, req.query.storedSince)
      if (next !== undefined) void reply.header(STORED_SINCE_HEADER, String(next))
      return heads
    })

    admin.get('/tenants/:tenant/rows', { schema: { summary: 'Rows stored per table for a tenant, ingested since `since` (ms)', params: TenantParams, querystring: SinceQuery } }, async (req) =>
      await rowsPerTable(deps.storage, req.params.tenant, req.query.since))
  }, { prefix: '/admin' })

  return app
}
