/**
 * The clinician HTTP API: personal log-in with lock-out and a per-source back-off, time-limited
 * sessions, roles, and tenant-scoped reads. The tenant always comes from the
 * session's principal. An id of another tenant gets exactly the answer an id
 * that does not exist gets.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { QUERYABLE_METRICS } from '../catalogue/index.ts'
import { METRIC_CATEGORY, type ConsentIndex } from '../consent/index.ts'
import type { AuthBackoff } from '../broker/index.ts'
import { HasherBusyError, type Principal, type Registry, type Role, type Users } from '../registry/index.ts'
import type { Rights } from '../rights/index.ts'
import type { Storage } from '../storage/index.ts'
import { isVitalflowError, VitalflowError } from '../errors.ts'
import type { AlarmHub } from './alarm-hub.ts'
import { parseLastEventId, serveAlarmStream } from './alarm-stream.ts'
import { FleetQuery, type FleetView } from './fleet-view.ts'
import { buildOverview, devicesOverTime } from './overview.ts'
import { rightsRoutes } from './rights-routes.ts'
import { registerTenantAdminRoutes } from './tenant-admin.ts'
import { id } from './schemas.ts'
import type { Queries } from './queries.ts'
import type { Sessions } from './sessions.ts'

export interface ClinicianDeps {
  users: Users
  sessions: Sessions
  queries: Queries
  registry: Registry
  consent: ConsentIndex
  alarms: AlarmHub
  rights: Rights
  storage: Storage
  /** The fleet view (devices with last seen, battery, certificate expiry), from memory. */
  fleet: FleetView
  /** Smallest group of patients a researcher's aggregate may describe. */
  researchMinGroup: number
  /** Back-off of failed log-ins per source address (as for MQTT): during it a log-in is refused without checking the password. */
  loginBackoff: AuthBackoff
}

/** The metrics a series or aggregate may ask for: the catalogue's, but the device's own diagnostics. */
export const METRICS = QUERYABLE_METRICS
const DAY = 86_400_000
const Login = z.object({ tenant: id.or(z.literal('')), user: id, password: z.string().min(1).max(200) })
const PatientParams = z.object({ patient: id })
const Range = z.object({ from: z.coerce.number().int().min(0).optional(), to: z.coerce.number().int().min(0).optional() })
const SeriesQuery = Range.extend({ metric: z.enum(METRICS), buckets: z.coerce.number().int().min(1).max(10_000).default(1000) })
/** The patient page's charts: every metric a chart can draw (sleep has its own route: stages are not averaged). */
const CHART_METRICS = METRICS.filter((m) => m !== 'sleep_stage')
const ChartsQuery = Range.extend({ buckets: z.coerce.number().int().min(1).max(2000).default(240) })
/** The patient list reads each vital's latest value over this window (older values show as none), open alarms over the last day. */
const OVERVIEW_WINDOW_MS = 30 * DAY
const ResearchQuery = Range.extend({ metric: z.enum(METRICS) })
// seq is a uint64: as a JSON number below 2^53, or as decimal text (as GET /api/alarms lists it) over the whole range
const Ack = z.object({ device: id, seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).or(z.string().regex(/^[0-9]{1,20}$/).refine((s) => BigInt(s) < 2n ** 64n)) })

const READERS: Role[] = ['tenant_admin', 'clinician']
const ALARM_READERS: Role[] = ['tenant_admin', 'clinician', 'responder']
const NOT_FOUND = 'not found'

/** A route of the clinician API: its path (OpenAPI style, `{patient}`), who may call it, and its schemas, declared once. */
export interface ApiRoute<P extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined> {
  method: 'GET' | 'POST' | 'PUT'; path: string; summary: string; roles: Role[] | 'public'; params?: P; query?: Q; body?: B
  /**
   * A read of personal data: logged in the access log (NEN 7513) before it is answered, one row per patient
   * whose data it answers (the path's patient, or each `patient` of a tenant-wide list). A request refused
   * (400, 404) read nothing and is not logged.
   */
  audit?: boolean
}

type Out<S> = S extends z.ZodType ? z.output<S> : unknown
/** A request as the route's own schemas validated it (fastify replaced params, query and body by the parsed values). */
export type ApiRequest<P, Q, B> = FastifyRequest<{ Params: Out<P>; Querystring: Out<Q>; Body: Out<B> }>

/** Declares one route of the API: its schemas, roles and access logging in `doc`, the handler typed from them. */
export type Route = <P extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined> (
  doc: ApiRoute<P, Q, B>, handler: (req: ApiRequest<P, Q, B>, reply: FastifyReply) => Promise<unknown>,
) => void

declare module 'fastify' {
  interface FastifyRequest { principal?: Principal }
  interface FastifySchema { 'x-roles'?: readonly Role[] }
}

/** Who may call a route, in the OpenAPI document: a public route needs no session. */
function access (roles: Role[] | 'public'): { security: [] } | { 'x-roles': readonly Role[] } {
  return roles === 'public' ? { security: [] } : { 'x-roles': roles }
}

export function registerClinicianApi (app: FastifyInstance, deps: ClinicianDeps): void {
  function range (q: { from?: number | undefined; to?: number | undefined }): { from: number; to: number } {
    const to = q.to ?? Date.now() + 60_000
    return { from: q.from ?? to - DAY, to }
  }

  /**
   * The principal's own patient; foreign and unknown ids alike are refused 404, and so is a patient
   * whose processing is restricted (their data is kept but shown to no read path but the rights export).
   */
  function ownPatient (req: FastifyRequest<{ Params: { patient: string } }>): string {
    const tenant = req.principal!.tenant
    const { patient } = req.params
    if (!deps.registry.hasPatient(tenant, patient) || deps.rights.isRestricted(tenant, patient)) throw new VitalflowError('ING_ERR_NOT_FOUND', NOT_FOUND)
    return patient
  }

  /** Whose data an answer holds: the path's patient (checked by the handler), else every `patient` in a list. */
  function patientsOf (req: FastifyRequest, answer: unknown): string[] {
    const patient = (req.params as { patient?: unknown } | undefined)?.patient
    if (typeof patient === 'string') return [patient]
    const seen = new Set<string>()
    if (Array.isArray(answer)) for (const row of answer as unknown[]) {
      const p = (row as { patient?: unknown } | null)?.patient
      if (typeof p === 'string' && p !== '') seen.add(p)
    }
    return [...seen]
  }

  /** The session's principal, checked before anything else (a request without one is refused 401 before validation). */
  function authorize (roles: Role[]) {
    return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const h = req.headers.authorization ?? ''
      const principal = h.startsWith('Bearer ') ? deps.sessions.check(h.slice(7)) : null
      if (principal === null) return await reply.code(401).send({ error: 'ING_ERR_AUTH', message: 'log in first, or again' })
      if (!roles.includes(principal.role)) return await reply.code(403).send({ error: 'ING_ERR_ROLE', message: 'your role may not read this' })
      req.principal = principal
    }
  }

  function route<P extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined> (
    doc: ApiRoute<P, Q, B>, handler: (req: ApiRequest<P, Q, B>, reply: FastifyReply) => Promise<unknown>,
  ): void {
    const action = `${doc.method} ${doc.path}`
    app.route({
      method: doc.method,
      url: doc.path.replace(/\{(\w+)\}/g, ':$1'),
      schema: {
        summary: doc.summary, ...access(doc.roles),
        ...(doc.params === undefined ? {} : { params: doc.params }),
        ...(doc.query === undefined ? {} : { querystring: doc.query }),
        ...(doc.body === undefined ? {} : { body: doc.body }),
      },
      ...(doc.roles === 'public' ? {} : { onRequest: authorize(doc.roles) }),
      handler: async (req, reply) => {
        const r = req as ApiRequest<P, Q, B>
        if (doc.audit !== true || req.principal === undefined) return await handler(r, reply)
        // the access log: one row per patient whose data the answer holds. A read refused 404 (an
        // unknown, foreign or erased id) showed no personal data: it is logged as an attempt with an
        // empty patient, never under the id asked for, so an erased id does not come back through the
        // log. A request refused by validation (400) never reaches here and is not logged.
        const p = req.principal
        const who = { user: p.user, role: p.role, remoteAddress: req.ip }
        let answer: unknown
        try {
          answer = await handler(r, reply)
        } catch (err) {
          if (isVitalflowError(err) && err.code === 'ING_ERR_NOT_FOUND' && (req.params as { patient?: unknown } | undefined)?.patient !== undefined) {
            await deps.rights.audit(p.tenant, who, '', action, 'refused 404: no such patient (id not recorded)')
          }
          throw err
        }
        // the query as the route's schema parsed it (unknown parameters dropped), never the raw query string
        if (!reply.sent) await deps.rights.audit(p.tenant, who, patientsOf(req, answer), action, doc.query === undefined ? '{}' : JSON.stringify(req.query))
        return answer
      },
    })
  }

  route({ method: 'POST', path: '/api/login', summary: 'Log in with a personal account; returns a time-limited bearer token and the account\'s role', roles: 'public', body: Login }, async (req, reply) => {
    const b = req.body
    // refused without checking the password: the address failed too often, or has as many log-ins being checked as it may still fail
    const may = deps.loginBackoff.begin(req.ip)
    if (!may.ok) {
      return await reply.code(429).header('retry-after', String(Math.ceil(may.waitMs / 1000)))
        .send(may.reason === 'backoff' ? { error: 'ING_ERR_AUTH_BACKOFF', message: 'too many failed log-ins from this address' } : { error: 'ING_ERR_AUTH_BUSY', message: 'too many log-ins at once from this address' })
    }
    const who = `${b.tenant}/${b.user}`
    let r: Awaited<ReturnType<Users['login']>>
    try {
      r = await deps.users.login(b.tenant, b.user, b.password)
    } catch (err) {
      deps.loginBackoff.abandon(req.ip)
      if (err instanceof HasherBusyError) return await reply.code(503).header('retry-after', '1').send({ error: err.code, message: 'too many log-ins at once; retry shortly' })
      throw err
    }
    // like MQTT: a correct password forgives only this account's failures from this address; every refusal counts
    if (r.ok) { deps.loginBackoff.succeed(req.ip, who); return { ...deps.sessions.open(r.principal), role: r.principal.role } }
    deps.loginBackoff.fail(req.ip, who)
    if (r.reason === 'ING_ERR_LOCKED') return await reply.code(423).header('retry-after', String(Math.ceil((r.retryAfterMs ?? 0) / 1000))).send({ error: r.reason, message: 'account locked after repeated failures' })
    return await reply.code(401).send({ error: r.reason, message: 'wrong tenant, user or password' })
  })

  route({ method: 'POST', path: '/api/logout', summary: 'End the session', roles: ['platform_admin', 'tenant_admin', 'clinician', 'researcher', 'responder'] }, async (req, reply) => {
    deps.sessions.close((req.headers.authorization ?? '').slice(7))
    return await reply.code(204).send()
  })

  route({ method: 'GET', path: '/api/patients', summary: 'Patients (pseudonymous ids) of the tenant', roles: READERS, audit: true }, async (req) => {
    const tenant = req.principal!.tenant
    return (await deps.queries.patients(tenant)).filter((p) => !deps.rights.isRestricted(tenant, p.patient))
  })

  route({ method: 'GET', path: '/api/patients/overview', summary: 'Every patient with the latest heart rate, SpO2, respiration and skin temperature (30 days), devices with battery and last-seen, and open alarms (24 h); one query per table for all patients', roles: READERS, audit: true }, async (req) => {
    const tenant = req.principal!.tenant
    const now = Date.now()
    const patients = deps.registry.listPatients(tenant).filter((p) => !deps.rights.isRestricted(tenant, p)).sort()
    return buildOverview(patients, deps.registry.listDevices(tenant), await deps.queries.overview(tenant, now - OVERVIEW_WINDOW_MS, now - DAY))
  })

  route({ method: 'GET', path: '/api/patients/{patient}/charts', summary: 'Every chartable metric as min/avg/max/sum per time bucket, in one query', roles: READERS, params: PatientParams, query: ChartsQuery, audit: true }, async (req) => {
    const patient = ownPatient(req)
    const { from, to } = range(req.query)
    return { from, to, buckets: req.query.buckets, metrics: await deps.queries.seriesMany(req.principal!.tenant, patient, CHART_METRICS, from, to, req.query.buckets) }
  })

  route({ method: 'GET', path: '/api/patients/{patient}/devices', summary: 'Devices bound to the patient over time (from, to; to null: bound now)', roles: READERS, params: PatientParams, audit: true }, async (req) =>
    devicesOverTime(ownPatient(req), deps.registry.listDevices(req.principal!.tenant)))

  route({ method: 'GET', path: '/api/patients/{patient}/latest', summary: 'Latest value of every metric', roles: READERS, params: PatientParams, audit: true }, async (req) =>
    await deps.queries.latest(req.principal!.tenant, ownPatient(req)))

  route({ method: 'GET', path: '/api/patients/{patient}/series', summary: 'A metric as min/avg/max per time bucket (server-side downsampling, one query)', roles: READERS, params: PatientParams, query: SeriesQuery, audit: true }, async (req) => {
    const patient = ownPatient(req)
    const q = req.query
    const { from, to } = range(q)
    return await deps.queries.series(req.principal!.tenant, patient, q.metric, from, to, q.buckets)
  })

  /** A route over one of the principal's patients and a time range. */
  function patientRange (path: string, summary: string, roles: Role[], read: (tenant: string, patient: string, from: number, to: number) => Promise<unknown>): void {
    route({ method: 'GET', path, summary, roles, params: PatientParams, query: Range, audit: true }, async (req) => {
      const patient = ownPatient(req)
      const { from, to } = range(req.query)
      return await read(req.principal!.tenant, patient, from, to)
    })
  }
  patientRange('/api/patients/{patient}/spot', 'Spot measurements (cVitals)', READERS, deps.queries.spot)
  patientRange('/api/patients/{patient}/sleep', 'Sleep stages as stored epochs, consecutive epochs of a stage merged (1 awake, 2 light, 3 deep, 4 REM)', READERS, deps.queries.sleep)
  patientRange('/api/patients/{patient}/alarms', 'Alarm history of a patient, with acknowledgements', ALARM_READERS,
    async (tenant, patient, from, to) => await deps.queries.alarms(tenant, from, to, patient))

  route({ method: 'GET', path: '/api/alarms', summary: 'Alarm history of the tenant, with acknowledgements', roles: ALARM_READERS, query: Range, audit: true }, async (req) => {
    const { from, to } = range(req.query)
    const tenant = req.principal!.tenant
    return (await deps.queries.alarms(tenant, from, to, null)).filter((a) => !deps.rights.isRestricted(tenant, a['patient'] as string))
  })

  route({ method: 'POST', path: '/api/alarms/ack', summary: 'Acknowledge an alarm (who and when are stored)', roles: ALARM_READERS, body: Ack }, async (req, reply) => {
    const b = req.body
    const tenant = req.principal!.tenant
    if (!await deps.queries.alarmExists(tenant, b.device, b.seq)) throw new VitalflowError('ING_ERR_NOT_FOUND', NOT_FOUND)
    await deps.queries.acknowledge(tenant, b.device, b.seq, req.principal!.user)
    return await reply.code(204).send()
  })

  route({ method: 'GET', path: '/api/alarms/stream', summary: 'Server-Sent Events: the tenant\'s alarms as they arrive, each with an id; Last-Event-ID replays those since from storage', roles: ALARM_READERS }, async (req, reply) => {
    reply.hijack()
    const p = req.principal!
    const who = { user: p.user, role: p.role, remoteAddress: req.ip }
    await serveAlarmStream({
      hub: deps.alarms,
      storedSince: deps.queries.alarmsSince,
      audit: async (patients) => { await deps.rights.audit(p.tenant, who, patients, 'GET /api/alarms/stream', 'replay after Last-Event-ID') },
      alive: () => deps.sessions.alive((req.headers.authorization ?? '').slice(7)),
    }, p.tenant, parseLastEventId(req.headers['last-event-id']), reply.raw, (f) => { req.raw.on('close', f) })
  })

  route({
    method: 'GET', path: '/api/devices', roles: READERS, query: FleetQuery,
    summary: 'The tenant\'s devices with last seen, battery, firmware, payload key and certificate expiry, filtered (not seen for N hours, battery below, certificate expiring) and paged by device id; from memory, never a telemetry scan',
  }, async (req) => deps.fleet.page(req.principal!.tenant, req.query, { withPatient: false }))

  route({ method: 'GET', path: '/api/research/aggregate', summary: 'Daily aggregates over research-consented patients; small groups suppressed', roles: ['researcher'], query: ResearchQuery }, async (req) => {
    const q = req.query
    const tenant = req.principal!.tenant
    const category = METRIC_CATEGORY[q.metric]
    const consented = deps.registry.listPatients(tenant).filter((p) => deps.consent.lookup(tenant, p, 'research', category) !== null && !deps.rights.isRestricted(tenant, p))
    const { from, to } = range({ from: q.from ?? Date.now() - 30 * DAY, to: q.to })
    return await deps.queries.research(tenant, consented, q.metric, from, to, deps.researchMinGroup)
  })

  // the data-subject rights, for the tenant's own administrator (tenant from the session)
  for (const r of rightsRoutes({ rights: deps.rights, registry: deps.registry, storage: deps.storage })) {
    route({ method: r.method, path: `/api${r.path}`, summary: r.summary, roles: r.roles, params: r.params, query: r.query, body: r.body }, async (req, reply) => {
      const p = req.principal!
      return await r.handler({ tenant: p.tenant, actor: { user: p.user, role: p.role, remoteAddress: req.ip }, params: req.params, query: req.query, body: req.body }, reply)
    })
  }

  registerTenantAdminRoutes(route, deps) // the tenant administrator's screens: devices, users, consent history
}
