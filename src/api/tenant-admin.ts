/**
 * The tenant administrator's session routes under /api, for the web app's administration
 * screens: the tenant's patients with their hold and restriction flags, a patient's consent
 * history, device enrolment, binding and key rotation, and the tenant's user accounts. The
 * tenant is always the session's (never a body or path field); a device or patient id of
 * another tenant answers exactly as an unknown one (404). They reuse the registry's own
 * methods (as the bearer /admin routes do) and the clinician API's route() for the role
 * check and the access log. The enrolment answer carries the device's secret and payload key
 * once, with `Cache-Control: no-store` like every answer.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { CATEGORIES, type ConsentIndex } from '../consent/index.ts'
import { ID_PATTERN } from '../ids.ts'
import { FAMILIES, type Registry, type Role, type Users } from '../registry/index.ts'
import type { Actor, Rights } from '../rights/index.ts'
import type { Storage, StorageConnection } from '../storage/index.ts'
import type { RouteDoc } from './clinician.ts'

export interface TenantAdminDeps { registry: Registry; users: Users; rights: Rights; storage: Storage; consent: ConsentIndex }

type Route = (doc: RouteDoc, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>) => void

const id = z.string().regex(ID_PATTERN)
/** The roles a tenant administrator may give: every one but the platform's. */
export const TENANT_ROLES = ['tenant_admin', 'clinician', 'researcher', 'responder'] as const satisfies readonly Role[]
const ADMIN: Role[] = ['tenant_admin']
const NOT_FOUND = { error: 'ING_ERR_NOT_FOUND', message: 'not found' }

const PatientParams = z.object({ patient: id })
const DeviceParams = z.object({ device: id })
const EnrolBody = z.object({ device: id, family: z.enum(FAMILIES), patient: id.nullish(), gateway: id.nullish() })
const BindingBody = z.object({ patient: id.nullable() })
const RotateBody = z.object({ overlapSeconds: z.number().int().min(0).max(30 * 86_400).default(86_400) })
const UserBody = z.object({ user: id, role: z.enum(TENANT_ROLES), password: z.string().min(12).max(200) })

/** The reads these routes make; each binds the session's tenant as a parameter. */
function reads (conn: StorageConnection) {
  const rows = async <T>(query: string, params: Record<string, unknown>): Promise<T[]> =>
    await (await conn.client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>()
  return {
    consentHistory: async (tenant: string, patient: string) => (await rows<{ version: number; purpose: string; category: string; action: string; source: string; recordedBy: string; recordedAtMs: string; validFromMs: string }>(
      `SELECT version, purpose, category, action, source, recorded_by AS recordedBy, toString(toUnixTimestamp64Milli(recorded_at)) AS recordedAtMs,
         toString(toUnixTimestamp64Milli(valid_from)) AS validFromMs
       FROM ${conn.table('consent_events')} WHERE tenant_id = {tenant:String} AND patient_id = {patient:String} ORDER BY version`, { tenant, patient }))
      .map((r) => ({ ...r, version: Number(r.version), recordedAtMs: Number(r.recordedAtMs), validFromMs: Number(r.validFromMs) })),
    users: async (tenant: string) => (await rows<{ user: string; role: Role; updatedAtMs: string }>(
      `SELECT user_id AS user, role, toString(toUnixTimestamp64Milli(updated_at)) AS updatedAtMs FROM ${conn.table('users')} FINAL
       WHERE tenant_id = {tenant:String} AND disabled = 0 ORDER BY user_id`, { tenant }))
      .map((r) => ({ user: r.user, role: r.role, updatedAtMs: Number(r.updatedAtMs) })),
  }
}

function parse<T> (schema: z.ZodType<T>, value: unknown, reply: FastifyReply): T | undefined {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  void reply.code(400).send({ error: 'ING_ERR_INVALID', issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) })
  return undefined
}

const actorOf = (req: FastifyRequest): Actor => ({ user: req.principal!.user, role: req.principal!.role, remoteAddress: req.ip })

export function registerTenantAdminRoutes (route: Route, deps: TenantAdminDeps): void {
  const { registry } = deps
  const read = reads(deps.storage.conn)

  /** The session tenant's device of the path, or undefined after a 404 (another tenant's answers as an unknown one). */
  const ownDevice = (req: FastifyRequest, reply: FastifyReply): string | undefined => {
    const p = parse(DeviceParams, req.params, reply)
    if (p === undefined) return undefined
    if (registry.device(p.device)?.tenant !== req.principal!.tenant) { void reply.code(404).send(NOT_FOUND); return undefined }
    return p.device
  }
  /** A patient id of a body: null, or one of the session tenant's patients; undefined after a 404. */
  const ownPatientOrNone = (tenant: string, patient: string | null | undefined, reply: FastifyReply): string | null | undefined => {
    if (patient == null) return null
    if (!registry.hasPatient(tenant, patient)) { void reply.code(404).send(NOT_FOUND); return undefined }
    return patient
  }

  route({ method: 'GET', path: '/api/tenant/patients', summary: 'Every patient of the tenant (restricted ones too) with legal hold and restriction', roles: ADMIN, audit: true }, async (req) => {
    const tenant = req.principal!.tenant
    return registry.listPatients(tenant).sort().map((patient) => ({ patient, legalHold: deps.rights.isHeld(tenant, patient), restricted: deps.rights.isRestricted(tenant, patient) }))
  })

  route({ method: 'GET', path: '/api/patients/{patient}/consent', summary: 'A patient\'s consent history (every grant and withdrawal, oldest first)', roles: ADMIN, params: PatientParams, audit: true }, async (req, reply) => {
    const p = parse(PatientParams, req.params, reply)
    if (p === undefined) return reply
    const tenant = req.principal!.tenant
    if (!registry.hasPatient(tenant, p.patient)) return await reply.code(404).send(NOT_FOUND)
    return { patient: p.patient, legalHold: deps.rights.isHeld(tenant, p.patient), restricted: deps.rights.isRestricted(tenant, p.patient), events: await read.consentHistory(tenant, p.patient) }
  })

  route({ method: 'GET', path: '/api/tenant/devices', summary: 'The tenant\'s devices with their patient, gateway and payload keys (ids and end of validity, never the keys)', roles: ADMIN, audit: true }, async (req) => {
    return registry.listDevices(req.principal!.tenant).sort((a, b) => a.device < b.device ? -1 : a.device > b.device ? 1 : 0).map((d) => ({
      device: d.device, family: d.family, patient: d.patient ?? '', gateway: d.gateway,
      keys: [...d.keys].map(([keyId, k]) => ({ keyId, notAfterMs: k.notAfterMs })).sort((a, b) => a.keyId - b.keyId),
    }))
  })

  route({ method: 'POST', path: '/api/tenant/devices', summary: 'Enrol a device: answers its secret and first payload key, once', roles: ADMIN, body: EnrolBody }, async (req, reply) => {
    const b = parse(EnrolBody, req.body, reply)
    if (b === undefined) return reply
    const tenant = req.principal!.tenant
    const patient = ownPatientOrNone(tenant, b.patient, reply)
    if (patient === undefined) return reply
    if (b.gateway != null && (registry.device(b.gateway)?.tenant !== tenant || registry.device(b.gateway)?.family !== 'gateway')) return await reply.code(404).send(NOT_FOUND)
    const e = await registry.enrollDevice({ tenant, device: b.device, family: b.family, patient, gateway: b.gateway ?? null })
    if (patient !== null) await deps.rights.audit(tenant, actorOf(req), patient, 'device_enrol', b.device)
    return await reply.code(201).send(e)
  })

  route({ method: 'POST', path: '/api/tenant/devices/{device}/binding', summary: 'Bind the device to a patient from now on, or unbind it (patient null)', roles: ADMIN, params: DeviceParams, body: BindingBody }, async (req, reply) => {
    const device = ownDevice(req, reply)
    const b = device === undefined ? undefined : parse(BindingBody, req.body, reply)
    if (device === undefined || b === undefined) return reply
    const tenant = req.principal!.tenant
    const patient = ownPatientOrNone(tenant, b.patient, reply)
    if (patient === undefined) return reply
    const before = registry.device(device)!.patient
    // a new binding must start after the current one: two changes within the same millisecond follow each other
    const last = registry.device(device)!.bindings.at(-1)?.fromMs ?? 0
    await registry.bindDevice(tenant, device, patient, Math.max(Date.now(), last + 1))
    if (before !== null && before !== patient) await deps.rights.audit(tenant, actorOf(req), before, 'device_unbind', device)
    if (patient !== null) await deps.rights.audit(tenant, actorOf(req), patient, 'device_bind', device)
    return { device, patient: patient ?? '' }
  })

  route({ method: 'POST', path: '/api/tenant/devices/{device}/keys', summary: 'Rotate the device\'s payload key: answers the new key once; the old one stays valid for the overlap', roles: ADMIN, params: DeviceParams, body: RotateBody }, async (req, reply) => {
    const device = ownDevice(req, reply)
    const b = device === undefined ? undefined : parse(RotateBody, req.body ?? {}, reply)
    if (device === undefined || b === undefined) return reply
    return await reply.code(201).send({ device, ...await registry.rotateKey(req.principal!.tenant, device, b.overlapSeconds * 1000) })
  })

  route({ method: 'GET', path: '/api/tenant/retention', summary: 'The tenant\'s retention period of each category with the policy\'s default and legal bounds', roles: ADMIN }, async (req) => {
    const tenant = req.principal!.tenant
    return CATEGORIES.map((category) => {
      const r = deps.consent.policy.retention[category]
      return { category, days: deps.rights.retentionDays(tenant, category), defaultDays: r.defaultDays, minDays: r.minDays, maxDays: r.maxDays, source: r.source }
    })
  })

  route({ method: 'GET', path: '/api/tenant/users', summary: 'The tenant\'s user accounts and their roles (never a password hash)', roles: ADMIN }, async (req) => await read.users(req.principal!.tenant))

  route({ method: 'POST', path: '/api/tenant/users', summary: 'Create a personal account in the tenant with a role and an initial password', roles: ADMIN, body: UserBody }, async (req, reply) => {
    const b = parse(UserBody, req.body, reply)
    if (b === undefined) return reply
    return await reply.code(201).send(await deps.users.create(req.principal!.tenant, b.user, b.role, b.password))
  })
}
