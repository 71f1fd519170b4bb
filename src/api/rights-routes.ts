/**
 * The data-subject rights as HTTP routes. One table of actions, mounted twice:
 * under /api for a tenant administrator (tenant from the session) and under
 * /admin/tenants/{tenant} for the platform administrator and the admin CLI.
 * Every action is written to the access log with the actor who asked.
 */
import type { FastifyReply } from 'fastify'
import { z } from 'zod'
import { CATEGORIES, CONSENT_CATEGORIES, PURPOSES } from '../consent/index.ts'
import { ID_PATTERN } from '../ids.ts'
import type { Registry, Role } from '../registry/index.ts'
import { RightsError, RECTIFIABLE_TARGETS, exportPatient, type Actor, type ExportFormat, type Rights } from '../rights/index.ts'
import type { Storage } from '../storage/index.ts'

const id = z.string().regex(ID_PATTERN)

export const RightsSchemas = {
  patient: z.object({ patient: id }),
  category: z.object({ category: z.enum(CATEGORIES) }),
  retention: z.object({ days: z.number().int().min(1) }),
  exportQuery: z.object({ format: z.enum(['fhir', 'ndjson', 'csv']).default('fhir'), from: z.coerce.number().int().min(0).optional(), to: z.coerce.number().int().min(0).optional() }),
  erasure: z.object({ categories: z.array(z.enum(CONSENT_CATEGORIES)).min(1).optional() }),
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
    /** With a withdrawal: also erase the category's stored data. */
    erase: z.boolean().default(false),
  }),
}

export interface RightsDeps { rights: Rights; registry: Registry; storage: Storage }

type Handler = (tenant: string, actor: Actor, input: { params: unknown; query: unknown; body: unknown }, reply: FastifyReply) => Promise<unknown>

export interface RightsRoute {
  method: 'GET' | 'POST' | 'PUT'
  /** Relative path: prefixed with /api or /admin/tenants/{tenant}. */
  path: string
  summary: string
  roles: Role[]
  params?: z.ZodType
  query?: z.ZodType
  body?: z.ZodType
  handler: Handler
}

const STATUS: Record<RightsError['code'], number> = { ING_ERR_NOT_FOUND: 404, ING_ERR_HELD: 409, ING_ERR_INVALID: 400 }

function parse<T> (schema: z.ZodType<T>, value: unknown, reply: FastifyReply): T | undefined {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  void reply.code(400).send({ error: 'ING_ERR_INVALID', issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) })
  return undefined
}

/** Runs a rights call; its refusals become their HTTP status. */
async function answer (reply: FastifyReply, work: () => Promise<unknown>): Promise<unknown> {
  try {
    return await work()
  } catch (err) {
    if (err instanceof RightsError) return await reply.code(STATUS[err.code]).send({ error: err.code, message: err.message })
    throw err
  }
}

const ADMIN: Role[] = ['tenant_admin']

export function rightsRoutes (deps: RightsDeps): RightsRoute[] {
  const { rights, registry } = deps
  const S = RightsSchemas
  /** The patient of the path, or undefined after a 404 (another tenant's id answers as an unknown one). */
  const patientOf = (tenant: string, params: unknown, reply: FastifyReply): string | undefined => {
    const p = parse(S.patient, params, reply)
    if (p === undefined) return undefined
    if (!registry.hasPatient(tenant, p.patient)) { void reply.code(404).send({ error: 'ING_ERR_NOT_FOUND', message: 'not found' }); return undefined }
    return p.patient
  }
  /** A handler over the path's patient and a validated body. */
  const withPatient = <T>(schema: z.ZodType<T>, run: (tenant: string, actor: Actor, patient: string, body: T, reply: FastifyReply) => Promise<unknown>): Handler =>
    async (tenant, actor, i, reply) => {
      const patient = patientOf(tenant, i.params, reply)
      const b = patient === undefined ? undefined : parse(schema, i.body ?? {}, reply)
      if (patient === undefined || b === undefined) return reply
      return await run(tenant, actor, patient, b, reply)
    }
  return [
    {
      method: 'GET', path: '/register', summary: 'Register of processing activities of the tenant, generated from the policy', roles: ADMIN,
      handler: async (tenant) => rights.register(tenant),
    },
    {
      method: 'PUT', path: '/retention/{category}', summary: 'Set the tenant\'s retention period of a category (within the legal bounds)', roles: ADMIN,
      params: S.category, body: S.retention,
      handler: async (tenant, actor, i, reply) => {
        const p = parse(S.category, i.params, reply)
        const b = p === undefined ? undefined : parse(S.retention, i.body, reply)
        if (p === undefined || b === undefined) return reply
        return await answer(reply, async () => { await rights.setRetention(tenant, p.category, b.days, actor); return { category: p.category, days: b.days } })
      },
    },
    {
      method: 'GET', path: '/erasure-receipts', summary: 'Erasure receipts of the tenant (who, when, what, row counts; no erased data)', roles: ADMIN,
      handler: async (tenant) => await rights.receipts(tenant),
    },
    {
      method: 'GET', path: '/patients/{patient}/access-report', summary: 'Everything held on a patient: purposes, categories, recipients, retention, source, and who looked', roles: ADMIN,
      params: S.patient,
      handler: async (tenant, actor, i, reply) => {
        const patient = patientOf(tenant, i.params, reply)
        if (patient === undefined) return reply
        await rights.audit(tenant, actor, patient, 'access_report', '')
        return await answer(reply, async () => await rights.accessReport(tenant, patient))
      },
    },
    {
      method: 'GET', path: '/patients/{patient}/export', summary: 'Portability export, streamed: FHIR R4 Bundle, NDJSON or CSV (also while restricted)', roles: ADMIN,
      params: S.patient, query: S.exportQuery,
      handler: async (tenant, actor, i, reply) => {
        const patient = patientOf(tenant, i.params, reply)
        const q = patient === undefined ? undefined : parse(S.exportQuery, i.query, reply)
        if (patient === undefined || q === undefined) return reply
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
    },
    {
      method: 'POST', path: '/patients/{patient}/erasure', summary: 'Erase the patient (or, with categories, their consent-based data of those categories); returns the receipt', roles: ADMIN,
      params: S.patient, body: S.erasure,
      handler: withPatient(S.erasure, async (tenant, actor, patient, b, reply) =>
        await answer(reply, async () => await rights.erase(tenant, patient, actor, b.categories))),
    },
    {
      method: 'POST', path: '/patients/{patient}/hold', summary: 'Place or lift a legal hold (blocks erasure and retention deletion)', roles: ADMIN,
      params: S.patient, body: S.hold,
      handler: withPatient(S.hold, async (tenant, actor, patient, b) => { await rights.setHold(tenant, patient, b.hold, actor, b.reason); return { legalHold: b.hold } }),
    },
    {
      method: 'POST', path: '/patients/{patient}/restriction', summary: 'Restrict processing (data kept, hidden from every read but the export) or lift it', roles: ADMIN,
      params: S.patient, body: S.restriction,
      handler: withPatient(S.restriction, async (tenant, actor, patient, b) => { await rights.setRestriction(tenant, patient, b.restrict, actor, b.reason); return { restricted: b.restrict } }),
    },
    {
      method: 'POST', path: '/patients/{patient}/rectifications', summary: 'Mark a stored value as erroneous with its correction', roles: ['tenant_admin', 'clinician'],
      params: S.patient, body: S.rectification,
      handler: withPatient(S.rectification, async (tenant, actor, patient, b, reply) => {
        if (rights.isRestricted(tenant, patient)) return await reply.code(404).send({ error: 'ING_ERR_NOT_FOUND', message: 'not found' })
        return await answer(reply, async () => await rights.rectify(tenant, patient, b, actor))
      }),
    },
    {
      method: 'POST', path: '/patients/{patient}/consent', summary: 'Record a consent grant or withdrawal (a withdrawal with erase=true also erases the category)', roles: ADMIN,
      params: S.patient, body: S.consent,
      handler: withPatient(S.consent, async (tenant, actor, patient, b, reply) => {
        if (b.erase && (b.action !== 'withdraw' || !(CONSENT_CATEGORIES as readonly string[]).includes(b.category))) {
          return await reply.code(400).send({ error: 'ING_ERR_INVALID', message: 'erase goes with the withdrawal of a consent-based category' })
        }
        const e = await registry.recordConsent({ tenant, patient, purpose: b.purpose, category: b.category, action: b.action, recordedBy: actor.user, source: b.source, validFromMs: b.validFromMs })
        await rights.audit(tenant, actor, patient, `consent_${b.action}`, `${b.purpose}/${b.category}`)
        const receipt = b.erase ? await answer(reply, async () => await rights.erase(tenant, patient, actor, [b.category])) : null
        if (reply.sent) return reply
        return await reply.code(201).send({ version: e.version, recordedAtMs: e.recordedAtMs, erasure: receipt })
      }),
    },
  ]
}
