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
import type { FastifyRequest } from 'fastify'
import { z } from 'zod'
import { CATEGORIES, type ConsentIndex } from '../consent/index.ts'
import { VitalflowError } from '../errors.ts'
import { FAMILIES, type Registry, type Role, type Users } from '../registry/index.ts'
import type { Actor, Rights } from '../rights/index.ts'
import { consentHistory, tenantUsers, type Storage } from '../storage/index.ts'
import type { Route } from './clinician.ts'
import { id, optionalBody } from './schemas.ts'

export interface TenantAdminDeps { registry: Registry; users: Users; rights: Rights; storage: Storage; consent: ConsentIndex }

/** The roles a tenant administrator may give: every one but the platform's. */
export const TENANT_ROLES = ['tenant_admin', 'clinician', 'researcher', 'responder'] as const satisfies readonly Role[]
const ADMIN: Role[] = ['tenant_admin']

const PatientParams = z.object({ patient: id })
const DeviceParams = z.object({ device: id })
const EnrolBody = z.object({ device: id, family: z.enum(FAMILIES), patient: id.nullish(), gateway: id.nullish() })
const BindingBody = z.object({ patient: id.nullable() })
const RotateBody = optionalBody(z.object({ overlapSeconds: z.number().int().min(0).max(30 * 86_400).default(86_400) }))
const UserBody = z.object({ user: id, role: z.enum(TENANT_ROLES), password: z.string().min(12).max(200) })

/** Another tenant's id answers exactly as an unknown one. */
const notFound = (): VitalflowError => new VitalflowError('ING_ERR_NOT_FOUND', 'not found')

const actorOf = (req: FastifyRequest): Actor => ({ user: req.principal!.user, role: req.principal!.role, remoteAddress: req.ip })

export function registerTenantAdminRoutes (route: Route, deps: TenantAdminDeps): void {
  const { registry } = deps

  /** The session tenant's device of that id (another tenant's is not found). */
  const ownDevice = (tenant: string, device: string): string => {
    if (registry.device(device)?.tenant !== tenant) throw notFound()
    return device
  }
  /** A patient id of a body: null, or one of the session tenant's patients. */
  const ownPatientOrNone = (tenant: string, patient: string | null | undefined): string | null => {
    if (patient == null) return null
    if (!registry.hasPatient(tenant, patient)) throw notFound()
    return patient
  }

  route({ method: 'GET', path: '/api/tenant/patients', summary: 'Every patient of the tenant (restricted ones too) with legal hold and restriction', roles: ADMIN, audit: true }, async (req) => {
    const tenant = req.principal!.tenant
    return registry.listPatients(tenant).sort().map((patient) => ({ patient, legalHold: deps.rights.isHeld(tenant, patient), restricted: deps.rights.isRestricted(tenant, patient) }))
  })

  route({ method: 'GET', path: '/api/patients/{patient}/consent', summary: 'A patient\'s consent history (every grant and withdrawal, oldest first)', roles: ADMIN, params: PatientParams, audit: true }, async (req) => {
    const tenant = req.principal!.tenant
    const { patient } = req.params
    if (!registry.hasPatient(tenant, patient)) throw notFound()
    return { patient, legalHold: deps.rights.isHeld(tenant, patient), restricted: deps.rights.isRestricted(tenant, patient), events: await consentHistory(deps.storage, tenant, patient) }
  })

  route({ method: 'GET', path: '/api/tenant/devices', summary: 'The tenant\'s devices with their patient, gateway and payload keys (ids and end of validity, never the keys)', roles: ADMIN, audit: true }, async (req) => {
    return registry.listDevices(req.principal!.tenant).sort((a, b) => a.device < b.device ? -1 : a.device > b.device ? 1 : 0).map((d) => ({
      device: d.device, family: d.family, patient: d.patient ?? '', gateway: d.gateway,
      keys: [...d.keys].map(([keyId, k]) => ({ keyId, notAfterMs: k.notAfterMs })).sort((a, b) => a.keyId - b.keyId),
    }))
  })

  route({ method: 'POST', path: '/api/tenant/devices', summary: 'Enrol a device: answers its secret and first payload key, once', roles: ADMIN, body: EnrolBody }, async (req, reply) => {
    const b = req.body
    const tenant = req.principal!.tenant
    const patient = ownPatientOrNone(tenant, b.patient)
    if (b.gateway != null && (registry.device(b.gateway)?.tenant !== tenant || registry.device(b.gateway)?.family !== 'gateway')) throw notFound()
    const e = await registry.enrollDevice({ tenant, device: b.device, family: b.family, patient, gateway: b.gateway ?? null })
    if (patient !== null) await deps.rights.audit(tenant, actorOf(req), patient, 'device_enrol', b.device)
    return await reply.code(201).send(e)
  })

  route({ method: 'POST', path: '/api/tenant/devices/{device}/binding', summary: 'Bind the device to a patient from now on, or unbind it (patient null)', roles: ADMIN, params: DeviceParams, body: BindingBody }, async (req) => {
    const tenant = req.principal!.tenant
    const device = ownDevice(tenant, req.params.device)
    const patient = ownPatientOrNone(tenant, req.body.patient)
    const before = registry.device(device)!.patient
    // a new binding must start after the current one: two changes within the same millisecond follow each other
    const last = registry.device(device)!.bindings.at(-1)?.fromMs ?? 0
    await registry.bindDevice(tenant, device, patient, Math.max(Date.now(), last + 1))
    if (before !== null && before !== patient) await deps.rights.audit(tenant, actorOf(req), before, 'device_unbind', device)
    if (patient !== null) await deps.rights.audit(tenant, actorOf(req), patient, 'device_bind', device)
    return { device, patient: patient ?? '' }
  })

  route({ method: 'POST', path: '/api/tenant/devices/{device}/keys', summary: 'Rotate the device\'s payload key: answers the new key once; the old one stays valid for the overlap', roles: ADMIN, params: DeviceParams, body: RotateBody }, async (req, reply) => {
    const tenant = req.principal!.tenant
    const device = ownDevice(tenant, req.params.device)
    return await reply.code(201).send({ device, ...await registry.rotateKey(tenant, device, req.body.overlapSeconds * 1000) })
  })

  route({ method: 'POST', path: '/api/tenant/devices/{device}/revoke', summary: 'Revoke a lost or stolen device: disconnected at once, refused at CONNECT and for every message after', roles: ADMIN, params: DeviceParams }, async (req) => {
    const tenant = req.principal!.tenant
    return await registry.revokeDevice(tenant, ownDevice(tenant, req.params.device))
  })

  route({ method: 'GET', path: '/api/tenant/retention', summary: 'The tenant\'s retention period of each category with the policy\'s default and legal bounds', roles: ADMIN }, async (req) => {
    const tenant = req.principal!.tenant
    return CATEGORIES.map((category) => {
      const r = deps.consent.policy.retention[category]
      return { category, days: deps.rights.retentionDays(tenant, category), defaultDays: r.defaultDays, minDays: r.minDays, maxDays: r.maxDays, source: r.source }
    })
  })

  route({ method: 'GET', path: '/api/tenant/users', summary: 'The tenant\'s user accounts and their roles (never a password hash)', roles: ADMIN }, async (req) => await tenantUsers(deps.storage, req.principal!.tenant))

  route({ method: 'POST', path: '/api/tenant/users', summary: 'Create a personal account in the tenant with a role and an initial password', roles: ADMIN, body: UserBody }, async (req, reply) => {
    const b = req.body
    return await reply.code(201).send(await deps.users.create(req.principal!.tenant, b.user, b.role, b.password))
  })
}
