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
import { ID_PATTERN } from '../ids.ts'
import type { AuthBackoff } from '../broker/index.ts'
import { HasherBusyError, type Principal, type Registry, type Role, type Users } from '../registry/index.ts'
import type { Rights } from '../rights/index.ts'
import type { Storage } from '../storage/index.ts'
import type { AlarmHub } from './alarm-hub.ts'
import { parseLastEventId, serveAlarmStream } from './alarm-stream.ts'
import { buildOverview, devicesOverTime } from './overview.ts'
import { rightsRoutes } from './rights-routes.ts'
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
  /** Smallest group of patients a researcher's aggregate may describe. */
  researchMinGroup: number
  /** Back-off of failed log-ins per source address (as for MQTT): during it a log-in is refused without checking the password. */
  loginBackoff: AuthBackoff
}

const id = z.string().regex(ID_PATTERN)
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
const NOT_FOUND = { error: 'ING_ERR_NOT_FOUND', message: 'not found' }

export interface RouteDoc {
  method: string; path: string; summary: string; roles: Role[] | 'public'; params?: z.ZodType; query?: z.ZodType; body?: z.ZodType
  /**
   * A read of personal data: logged in the access log (NEN 7513) before it is answered, one row per patient
   * whose data it answers (the path's patient, or each `patient` of a tenant-wide list). A request refused
   * (400, 404) read nothing and is not logged.
   */
  audit?: boolean
}

declare module 'fastify' { interface FastifyRequest { principal?: Principal } }

export function registerClinicianApi (app: FastifyInstance, deps: ClinicianDeps): RouteDoc[] {
  const docs: RouteDoc[] = []

  function range (q: { from?: number | undefined; to?: number | undefined }): { from: number; to: number } {
    const to = q.to ?? Date.now() + 60_000
    return { from: q.from ?? to - DAY, to }
  }

  function parse<T> (schema: z.ZodType<T>, value: unknown, reply: FastifyReply): T | undefined {
    const r = schema.safeParse(value)
    if (r.success) return r.data
    void reply.code(400).send({ error: 'ING_ERR_INVALID', issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) })
    return undefined
  }

  /**
   * The principal's own patient, or undefined after answering 404: foreign and
   * unknown ids alike, and a patient whose processing is restricted (their
   * data is kept but shown to no read path but the rights export).
   */
  function ownPatient (req: FastifyRequest, reply: FastifyReply): string | undefined {
    const p = parse(PatientParams, req.params, reply)
    if (p === undefined) return undefined
    const tenant = req.principal!.tenant
    if (!deps.registry.hasPatient(tenant, p.patient) || deps.rights.isRestricted(tenant, p.patient)) { void reply.code(404).send(NOT_FOUND); return undefined }
    return p.patient
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

  /** The query as the route's schema parsed it (unknown parameters dropped), never the raw query string. */
  function parsedQuery (doc: RouteDoc, req: FastifyRequest): string {
    const q = doc.query?.safeParse(req.query ?? {})
    return q === undefined || !q.success ? '{}' : JSON.stringify(q.data)
  }

  function route (doc: RouteDoc, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>): void {
    docs.push(doc)
    app.route({
      method: doc.method,
      url: doc.path.replace(/\{(\w+)\}/g, ':$1'),
      handler: async (req, reply) => {
        if (doc.roles !== 'public') {
          const h = req.headers.authorization ?? ''
          const principal = h.startsWith('Bearer ') ? deps.sessions.check(h.slice(7)) : null
          if (principal === null) return await reply.code(401).send({ error: 'ING_ERR_AUTH', message: 'log in first, or again' })
          if (!doc.roles.includes(principal.role)) return await reply.code(403).send({ error: 'ING_ERR_ROLE', message: 'your role may not read this' })
          req.principal = principal
        }
        const answer = await handler(req, reply)
        // handlers return the reply itself when they have refused (validation, unknown or foreign patient)
        // the access log: one row per patient whose data the answer holds. A read refused 404 (an
        // unknown, foreign or erased id) showed no personal data: it is logged as an attempt with an
        // empty patient, never under the id asked for, so an erased id does not come back through the
        // log. A request refused by validation (400) is no read and is not logged.
        if (doc.audit === true && req.principal !== undefined) {
          const p = req.principal
          const who = { user: p.user, role: p.role, remoteAddress: req.ip }
          if (answer !== reply && !reply.sent) {
            await deps.rights.audit(p.tenant, who, patientsOf(req, answer), `${doc.method} ${doc.path}`, parsedQuery(doc, req))
          } else if (reply.statusCode === 404 && (req.params as { patient?: unknown } | undefined)?.patient !== undefined) {
            await deps.rights.audit(p.tenant, who, '', `${doc.method} ${doc.path}`, 'refused 404: no such patient (id not recorded)')
          }
        }
        return answer
      },
    })
  }

  route({ method: 'POST', path: '/api/login', summary: 'Log in with a personal account; returns a time-limited bearer token', roles: 'public', body: Login }, async (req, reply) => {
    const b = parse(Login, req.body, reply)
    if (b === undefined) return reply
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
    if (r.ok) { deps.loginBackoff.succeed(req.ip, who); return deps.sessions.open(r.principal) }
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

  route({ method: 'GET', path: '/api/patients/{patient}/charts', summary: 'Every chartable metric as min/avg/max/sum per time bucket, in one query', roles: READERS, params: PatientParams, query: ChartsQuery, audit: true }, async (req, reply) => {
    const patient = ownPatient(req, reply)
    const q = patient === undefined ? undefined : parse(ChartsQuery, req.query, reply)
    if (patient === undefined || q === undefined) return reply
    const { from, to } = range(q)
    return { from, to, buckets: q.buckets, metrics: await deps.queries.seriesMany(req.principal!.tenant, patient, CHART_METRICS, from, to, q.buckets) }
  })

  route({ method: 'GET', path: '/api/patients/{patient}/devices', summary: 'Devices bound to the patient over time (from, to; to null: bound now)', roles: READERS, params: PatientParams, audit: true }, async (req, reply) => {
    const patient = ownPatient(req, reply)
    return patient === undefined ? reply : devicesOverTime(patient, deps.registry.listDevices(req.principal!.tenant))
  })

  route({ method: 'GET', path: '/api/patients/{patient}/latest', summary: 'Latest value of every metric', roles: READERS, params: PatientParams, audit: true }, async (req, reply) => {
    const patient = ownPatient(req, reply)
    return patient === undefined ? reply : await deps.queries.latest(req.principal!.tenant, patient)
  })

  route({ method: 'GET', path: '/api/patients/{patient}/series', summary: 'A metric as min/avg/max per time bucket (server-side downsampling, one query)', roles: READERS, params: PatientParams, query: SeriesQuery, audit: true }, async (req, reply) => {
    const patient = ownPatient(req, reply)
    const q = patient === undefined ? undefined : parse(SeriesQuery, req.query, reply)
    if (patient === undefined || q === undefined) return reply
    const { from, to } = range(q)
    return await deps.queries.series(req.principal!.tenant, patient, q.metric, from, to, q.buckets)
  })

  /** A route over one of the principal's patients and a time range. */
  function patientRange (path: string, summary: string, roles: Role[], read: (tenant: string, patient: string, from: number, to: number) => Promise<unknown>): void {
    route({ method: 'GET', path, summary, roles, params: PatientParams, query: Range, audit: true }, async (req, reply) => {
      const patient = ownPatient(req, reply)
      const q = patient === undefined ? undefined : parse(Range, req.query, reply)
      if (patient === undefined || q === undefined) return reply
      const { from, to } = range(q)
      return await read(req.principal!.tenant, patient, from, to)
    })
  }
  patientRange('/api/patients/{patient}/spot', 'Spot measurements (cVitals)', READERS, deps.queries.spot)
  patientRange('/api/patients/{patient}/sleep', 'Sleep stages as stored epochs, consecutive epochs of a stage merged (1 awake, 2 light, 3 deep, 4 REM)', READERS, deps.queries.sleep)
  patientRange('/api/patients/{patient}/alarms', 'Alarm history of a patient, with acknowledgements', ALARM_READERS,
    async (tenant, patient, from, to) => await deps.queries.alarms(tenant, from, to, patient))

  route({ method: 'GET', path: '/api/alarms', summary: 'Alarm history of the tenant, with acknowledgements', roles: ALARM_READERS, query: Range, audit: true }, async (req, reply) => {
    const q = parse(Range, req.query, reply)
    if (q === undefined) return reply
    const { from, to } = range(q)
    const tenant = req.principal!.tenant
    return (await deps.queries.alarms(tenant, from, to, null)).filter((a) => !deps.rights.isRestricted(tenant, a['patient'] as string))
  })

  route({ method: 'POST', path: '/api/alarms/ack', summary: 'Acknowledge an alarm (who and when are stored)', roles: ALARM_READERS, body: Ack }, async (req, reply) => {
    const b = parse(Ack, req.body, reply)
    if (b === undefined) return reply
    const tenant = req.principal!.tenant
    if (!await deps.queries.alarmExists(tenant, b.device, b.seq)) return await reply.code(404).send(NOT_FOUND)
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

  route({ method: 'GET', path: '/api/devices', summary: 'Every enrolled device with its last status and when it was last seen (null: never)', roles: READERS }, async (req) => {
    const tenant = req.principal!.tenant
    const status = new Map((await deps.queries.devices(tenant)).map((s) => [s.device, s]))
    return deps.registry.listDevices(tenant).sort((a, b) => a.device < b.device ? -1 : a.device > b.device ? 1 : 0).map((d) => {
      const s = status.get(d.device)
      return { device: d.device, family: d.family, battery: s?.battery ?? null, firmware: s?.firmware ?? null, lastStatusAt: s?.lastStatusAt ?? null, lastSeenAt: s?.lastSeenAt ?? null }
    })
  })

  route({ method: 'GET', path: '/api/research/aggregate', summary: 'Daily aggregates over research-consented patients; small groups suppressed', roles: ['researcher'], query: ResearchQuery }, async (req, reply) => {
    const q = parse(ResearchQuery, req.query, reply)
    if (q === undefined) return reply
    const tenant = req.principal!.tenant
    const category = METRIC_CATEGORY[q.metric]
    const consented = deps.registry.listPatients(tenant).filter((p) => deps.consent.lookup(tenant, p, 'research', category) !== null && !deps.rights.isRestricted(tenant, p))
    const { from, to } = range({ from: q.from ?? Date.now() - 30 * DAY, to: q.to })
    return await deps.queries.research(tenant, consented, q.metric, from, to, deps.researchMinGroup)
  })

  // the data-subject rights, for the tenant's own administrator (tenant from the session)
  for (const r of rightsRoutes({ rights: deps.rights, registry: deps.registry, storage: deps.storage })) {
    const doc: RouteDoc = { method: r.method, path: `/api${r.path}`, summary: r.summary, roles: r.roles }
    if (r.params !== undefined) doc.params = r.params
    if (r.query !== undefined) doc.query = r.query
    if (r.body !== undefined) doc.body = r.body
    route(doc, async (req, reply) => {
      const p = req.principal!
      return await r.handler(p.tenant, { user: p.user, role: p.role, remoteAddress: req.ip }, { params: req.params, query: req.query, body: req.body }, reply)
    })
  }

  return docs
}
