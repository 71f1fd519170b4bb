/**
 * The data-subject rights as HTTP routes. One table of actions, mounted twice:
 * under /api for a tenant administrator (tenant from the session) and under
 * /admin/tenants/{tenant} for the platform administrator and the admin CLI.
 * Every action is written to the access log with the actor who asked.
 */
import type { FastifyReply } from 'fastify'
import { z } from 'zod'
import { VitalflowError } from '../errors.ts'
import { CATEGORIES, CONSENT_CATEGORIES, PURPOSES } from '../consent/index.ts'
import type { Registry, Role } from '../registry/index.ts'
import { RECTIFIABLE_TARGETS, exportPatient, type Actor, type ExportFormat, type Rights } from '../rights/index.ts'
import type { Storage } from '../storage/index.ts'
import { id, optionalBody } from './schemas.ts'

export const RightsSchemas = {
  patient: z.object({ patient: id }),
  category: z.object({ category: z.enum(CATEGORIES) }),
  retention: z.object({ days: z.number().int().min(1) }),
  exportQuery: z.object({ format: z.enum(['fhir', 'ndjson', 'csv']).default('fhir'), from: z.coerce.number().int().min(0).optional(), to: z.coerce.number().int().min(0).optional() }),
  erasure: optionalBody(z.object({ categories: z.array(z.enum(CONSENT_CATEGORIES)).min(1).optional() })),
  hold: z.object({ hold: z.boolean(), reason: z.string().min(1).max(200) }),
  restriction: z.object({ restrict: z.boolean(), reason: z.string().min(1).max(200) }),
  rectification: z.object({
    target: z.enum(RECTIFIABLE_TARGETS as [string, ...string[]]), device: id, seq: z.number().int().min(0),
    idx: z.number().int().min(0).max(65535).optional(), corrected: z.number(), reason: z.string().min(1).max(500),
  }),
  consent: z.object({
    purpose: z.enum(PURPOSES).default('care'), category: z.enum(CATEGORIES), action: z.enum(['grant', 'withdraw']),
    source: z.enum(['app', 'professional', 'paper_form', 'guardian', 'admin']).default('professional'),
    validFromMs: z.number().int().min(0).optional(),
    /** Who took the consent (the nurse with the signed form); the one recording it when absent. The access log names the recorder. */
    recordedBy: z.string().min(1).max(100).optional(),
    /** With a withdrawal: also erase the category's stored data. */
    erase: z.boolean().default(false),
  }),
}

export interface RightsDeps { rights: Rights; registry: Registry; storage: Storage }

/** What a rights action gets: the tenant (from the session, or the admin path), who asks, and the validated request. */
export interface RightsInput<P = unknown, Q = unknown, B = unknown> { tenant: string; actor: Actor; params: P; query: Q; body: B }

type Out<S> = S extends z.ZodType ? z.output<S> : undefined

export interface RightsRoute {
  method: 'GET' | 'POST' | 'PUT'
  /** Relative path: prefixed with /api or /admin/tenants/{tenant}. */
  path: string
  summary: string
  roles: Role[]
  params?: z.ZodObject
  query?: z.ZodType
  body?: z.ZodType
  handler: (input: RightsInput, reply: FastifyReply) => Promise<unknown>
}

/** One action, its handler typed from its own schemas (fastify validates with the same ones before it runs). */
function action<P extends z.ZodObject | undefined = undefined, Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined> (r: {
  method: RightsRoute['method']; path: string; summary: string; roles: Role[]; params?: P; query?: Q; body?: B
  handler: (input: RightsInput<Out<P>, Out<Q>, Out<B>>, reply: FastifyReply) => Promise<unknown>
}): RightsRoute {
  return r as RightsRoute
}

const ADMIN: Role[] = ['tenant_admin']
const NOT_FOUND = 'not found'

export function rightsRoutes (deps: RightsDeps): RightsRoute[] {
  const { rights, registry } = deps
  const S = RightsSchemas
  /** The patient of the path; another tenant's id is refused as an unknown one. */
  const patientOf = (tenant: string, params: { patient: string }): string => {
    if (!registry.hasPatient(tenant, params.patient)) throw new VitalflowError('ING_ERR_NOT_FOUND', NOT_FOUND)
    return params.patient
  }
  return [
    action({
      method: 'GET', path: '/register', summary: 'Register of processing activities of the tenant, generated from the policy', roles: ADMIN,
      handler: async ({ tenant }) => rights.register(tenant),
    }),
    action({
      method: 'PUT', path: '/retention/{category}', summary: 'Set the tenant\'s retention period of a category (within the legal bounds)', roles: ADMIN,
      params: S.category, body: S.retention,
      handler: async ({ tenant, actor, params, body }) => {
        await rights.setRetention(tenant, params.category, body.days, actor)
        return { category: params.category, days: body.days }
      },
    }),
    action({
      method: 'GET', path: '/erasure-receipts', summary: 'Erasure receipts of the tenant (who, when, what, row counts; no erased data)', roles: ADMIN,
      handler: async ({ tenant }) => await rights.receipts(tenant),
    }),
    action({
      method: 'GET', path: '/patients/{patient}/access-report', summary: 'Everything held on a patient: purposes, categories, recipients, retention, source, and who looked', roles: ADMIN,
      params: S.patient,
      handler: async ({ tenant, actor, params }) => {
        const patient = patientOf(tenant, params)
        await rights.audit(tenant, actor, patient, 'access_report', '')
        return await rights.accessReport(tenant, patient)
      },
    }),
    action({
      method: 'GET', path: '/patients/{patient}/export', summary: 'Portability export, streamed: FHIR R4 Bundle, NDJSON or CSV (also while restricted)', roles: ADMIN,
      params: S.patient, query: S.exportQuery,
      handler: async ({ tenant, actor, params, query: q }, reply) => {
        const patient = patientOf(tenant, params)
        await rights.audit(tenant, actor, patient, 'export', q.format)
        await deps.storage.flush()
        reply.hijack()
        const res = reply.raw
        const type: Record<ExportFormat, string> = { fhir: 'application/fhir+json', ndjson: 'application/x-ndjson', csv: 'text/csv; charset=utf-8' }
        res.writeHead(200, { 'content-type': type[q.format], 'content-disposition': `attachment; filename="${patient}.${q.format === 'fhir' ? 'json' : q.format}"` })
        try {
          await exportPatient(deps.storage.conn, { tenant, patient, format: q.format, fromMs: q.from, toMs: q.to }, res)
          res.end()
        } catch {
          res.destroy() // a cut-off download must not look complete
        }
        return reply
      },
    }),
    action({
      method: 'POST', path: '/patients/{patient}/erasure', summary: 'Erase the patient (or, with categories, their consent-based data of those categories); returns the receipt', roles: ADMIN,
      params: S.patient, body: S.erasure,
      handler: async ({ tenant, actor, params, body }) => await rights.erase(tenant, patientOf(tenant, params), actor, body.categories),
    }),
    action({
      method: 'POST', path: '/patients/{patient}/hold', summary: 'Place or lift a legal hold (blocks erasure and retention deletion)', roles: ADMIN,
      params: S.patient, body: S.hold,
      handler: async ({ tenant, actor, params, body }) => {
        await rights.setHold(tenant, patientOf(tenant, params), body.hold, actor, body.reason)
        return { legalHold: body.hold }
      },
    }),
    action({
      method: 'POST', path: '/patients/{patient}/restriction', summary: 'Restrict processing (data kept, hidden from every read but the export) or lift it', roles: ADMIN,
      params: S.patient, body: S.restriction,
      handler: async ({ tenant, actor, params, body }) => {
        await rights.setRestriction(tenant, patientOf(tenant, params), body.restrict, actor, body.reason)
        return { restricted: body.restrict }
      },
    }),
    action({
      method: 'POST', path: '/patients/{patient}/rectifications', summary: 'Mark a stored value as erroneous with its correction', roles: ['tenant_admin', 'clinician'],
      params: S.patient, body: S.rectification,
      handler: async ({ tenant, actor, params, body }) => {
        const patient = patientOf(tenant, params)
        if (rights.isRestricted(tenant, patient)) throw new VitalflowError('ING_ERR_NOT_FOUND', NOT_FOUND)
        return await rights.rectify(tenant, patient, body, actor)
      },
    }),
    action({
      method: 'POST', path: '/patients/{patient}/consent', summary: 'Record a consent grant or withdrawal, with its source (app, professional, paper form, guardian, admin); a withdrawal with erase=true also erases the category', roles: ADMIN,
      params: S.patient, body: S.consent,
      handler: async ({ tenant, actor, params, body: b }, reply) => {
        const patient = patientOf(tenant, params)
        if (b.erase && (b.action !== 'withdraw' || !(CONSENT_CATEGORIES as readonly string[]).includes(b.category))) {
          throw new VitalflowError('ING_ERR_INVALID', 'erase goes with the withdrawal of a consent-based category')
        }
        const e = await registry.recordConsent({
          tenant, patient, purpose: b.purpose, category: b.category, action: b.action, recordedBy: b.recordedBy ?? actor.user, source: b.source, validFromMs: b.validFromMs,
        })
        await rights.audit(tenant, actor, patient, `consent_${b.action}`, `${b.purpose}/${b.category} source=${b.source}`)
        const receipt = b.erase ? await rights.erase(tenant, patient, actor, [b.category]) : null
        return await reply.code(201).send({ version: e.version, recordedAtMs: e.recordedAtMs, erasure: receipt })
      },
    }),
  ]
}
