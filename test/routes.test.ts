/**
 * Routes that describe themselves (issue 15, section 2), on a real node's registry, rights and chDB
 * store, through fastify's own inject: the OpenAPI document lists every route fastify registered
 * under /api with the params, query and body of the route's own zod schema (a route added without a
 * schema fails here); one error handler answers each known error code with its status, anything else
 * with a 500 that says nothing of what failed; validation answers keep their shape.
 */
import type { FastifyInstance, RouteOptions } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { AlarmHub, createAdminApi, createFleetView, createQueries, Sessions } from '../src/api/index.ts'
import { METRICS } from '../src/api/clinician.ts'
import { AuthBackoff } from '../src/broker/index.ts'
import { ConsentIndex } from '../src/consent/index.ts'
import { HTTP_STATUS, VitalflowError, type HttpErrorCode } from '../src/errors.ts'
import { InvalidIdError } from '../src/ids.ts'
import type { IngestNode } from '../src/pipeline/index.ts'
import { HasherBusyError, RegistryError, UserError, Users } from '../src/registry/index.ts'
import { RightsError } from '../src/rights/index.ts'
import { StorageError } from '../src/storage/index.ts'
import { startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode
let app: FastifyInstance
const routes: RouteOptions[] = []
const PASSWORD = 'correct horse battery staple'

/** What each test route throws, by name. */
const THROWN: Record<string, () => Error> = {
  rightsHeld: () => new RightsError('ING_ERR_HELD', 'a legal hold is in place'),
  registryConflict: () => new RegistryError('ING_ERR_CONFLICT', 'device already enrolled'),
  userInvalid: () => new UserError('ING_ERR_INVALID', 'password too short'),
  invalidId: () => new InvalidIdError('patient', 'x'.repeat(70)),
  hasherBusy: () => new HasherBusyError(),
  storageDown: () => new StorageError('ING_ERR_STORAGE', 'insert into /var/lib/vf/db.vital_samples failed: SECRET-INTERNAL', { cause: new Error('ECONNREFUSED') }),
  unlistedCode: () => new VitalflowError('ING_ERR_OUTPUT', 'write to fd 17 failed: SECRET-INTERNAL'),
  bug: () => new TypeError('Cannot read properties of undefined (reading \'SECRET-INTERNAL\')'),
}

beforeAll(async () => {
  dir = tempDir()
  node = await startTestNode(dir.path)
  const users = await Users.load(node.storage.conn, { maxFailures: 5, lockMs: 60_000 }, 10, node.hasher)
  const fleet = createFleetView(node.registry, node.presence)
  app = createAdminApi({
    registry: node.registry, storage: node.storage, adminToken: node.adminToken, stats: () => ({}), connectionInfo: () => ({}), fleet,
    clinician: {
      users, sessions: new Sessions({ idleMs: 60_000, absoluteMs: 600_000 }), queries: createQueries(node.storage.conn), registry: node.registry,
      consent: new ConsentIndex(), alarms: new AlarmHub(), rights: node.rights, storage: node.storage, fleet, researchMinGroup: 2, loginBackoff: new AuthBackoff(5, 60),
    },
  })
  // every route fastify registers, as it registers it (the clinician and admin routes are added when the app boots)
  app.addHook('onRoute', (r) => { routes.push(r) })
  for (const code of Object.keys(HTTP_STATUS)) {
    app.get(`/test/code/${code}`, async () => { throw new VitalflowError(code, `refused with ${code}`) })
  }
  for (const [name, make] of Object.entries(THROWN)) app.get(`/test/thrown/${name}`, async () => { throw make() })
  await app.ready()
  await node.registry.createTenant('care-r', 'R')
  await node.registry.createPatient('care-r', 'r-p1')
  await users.create('care-r', 'boss', 'tenant_admin', PASSWORD)
}, 60_000)

afterAll(async () => {
  await app?.close()
  await node?.close()
  dir?.remove()
})

interface Parameter { name: string; in: 'path' | 'query'; required: boolean; schema: Record<string, unknown> }
interface Operation { summary?: string; security?: unknown[]; 'x-roles'?: string[]; parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }
type Document = { openapi: string; security: unknown[]; components: { securitySchemes: Record<string, unknown> }; paths: Record<string, Record<string, Operation>> }

async function documentAt (url: string, token?: string): Promise<Document> {
  const r = await app.inject({ method: 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  expect(r.statusCode).toBe(200)
  return r.json<Document>()
}

/** The keys of a route's zod object schema (the params, querystring or body fastify validates with). */
function keysOf (schema: unknown): string[] {
  if (schema === undefined) return []
  // an optional body is a pipe (nullish object → defaults); its input side is the object
  const s = schema as z.ZodType
  const input = s instanceof z.ZodPipe ? (s.in as z.ZodType) : s
  let object = input
  while (object instanceof z.ZodOptional || object instanceof z.ZodNullable) object = object.unwrap() as z.ZodType
  expect(object).toBeInstanceOf(z.ZodObject)
  return Object.keys((object as z.ZodObject).shape).sort()
}

// `::` is fastify's literal colon (`devices::import` is the path `devices:import`), not a parameter
const openApiPath = (url: string): string => url.replace(/(?<!:):(\w+)/g, '{$1}').replaceAll('::', ':')

describe('the OpenAPI document', () => {
  it('lists every /api route fastify registered, each with its summary, roles and the params, query and body of its own schema', async () => {
    const doc = await documentAt('/api/openapi.json')
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.components.securitySchemes).toEqual({ session: { type: 'http', scheme: 'bearer' } })
    expect(doc.security).toEqual([{ session: [] }])
    const api = routes.filter((r) => r.url.startsWith('/api/') && r.method !== 'HEAD' && r.url !== '/api/openapi.json')
    expect(api.length).toBeGreaterThanOrEqual(20)
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort()
    expect(documented).toEqual(api.map((r) => `${String(r.method)} ${openApiPath(r.url)}`).sort())
    for (const r of api) {
      const where = `${String(r.method)} ${r.url}`
      // a route without a schema of its own is a route this document cannot describe
      expect(r.schema, where).toBeDefined()
      const op = doc.paths[openApiPath(r.url)]![String(r.method).toLowerCase()]!
      expect(op.summary, where).toBe(r.schema!.summary)
      expect(op.summary!.length, where).toBeGreaterThan(5)
      if (r.url === '/api/login') expect(op.security).toEqual([])
      else expect(op['x-roles'], where).toEqual(r.schema!['x-roles'])
      const pathNames = [...r.url.matchAll(/:(\w+)/g)].map((m) => m[1]!).sort()
      expect(keysOf(r.schema!.params), `${where}: every path parameter has a schema`).toEqual(pathNames)
      const params = op.parameters ?? []
      expect(params.filter((p) => p.in === 'path').map((p) => p.name).sort(), where).toEqual(pathNames)
      expect(params.filter((p) => p.in === 'path').every((p) => p.required && typeof p.schema['type'] === 'string'), where).toBe(true)
      expect(params.filter((p) => p.in === 'query').map((p) => p.name).sort(), where).toEqual(keysOf(r.schema!.querystring))
      if (r.schema!.body === undefined) expect(op.requestBody, where).toBeUndefined()
      else {
        const body = op.requestBody!.content['application/json']!.schema
        const props = body['properties'] ?? (body['anyOf'] as Array<Record<string, unknown>> | undefined)?.find((s) => s['type'] === 'object')?.['properties']
        expect(Object.keys(props as object).sort(), where).toEqual(keysOf(r.schema!.body))
      }
    }
    // the schemas are the routes' own: the series metric is exactly the catalogue's queryable metrics
    const series = doc.paths['/api/patients/{patient}/series']!['get']!
    expect(series.parameters!.find((p) => p.name === 'metric')).toMatchObject({ in: 'query', required: true, schema: { enum: [...METRICS] } })
    expect(series.parameters!.find((p) => p.name === 'buckets')).toMatchObject({ in: 'query', required: false, schema: { default: 1000, maximum: 10_000 } })
    const consent = doc.paths['/api/patients/{patient}/consent']!['post']!
    expect(consent.requestBody!.content['application/json']!.schema).toMatchObject({ properties: { source: { enum: expect.arrayContaining(['guardian']) as unknown } } })
    // nothing else is in it: no admin route, no web app file, no health or metrics
    expect(Object.keys(doc.paths).every((p) => p.startsWith('/api/'))).toBe(true)
  })

  it('documents the /admin routes apart, behind the admin token, the consent recording only as the rights route', async () => {
    expect((await app.inject({ method: 'GET', url: '/admin/openapi.json' })).statusCode).toBe(401)
    const doc = await documentAt('/admin/openapi.json', node.adminToken)
    expect(doc.security).toEqual([{ admin: [] }])
    const admin = routes.filter((r) => r.url.startsWith('/admin/') && r.method !== 'HEAD' && r.url !== '/admin/openapi.json')
    expect(Object.keys(doc.paths).sort()).toEqual([...new Set(admin.map((r) => openApiPath(r.url)))].sort())
    expect(doc.paths['/admin/tenants/{tenant}/consent']).toBeUndefined()
    const consent = doc.paths['/admin/tenants/{tenant}/patients/{patient}/consent']!['post']!
    expect(consent.parameters!.map((p) => p.name).sort()).toEqual(['patient', 'tenant'])
  })
})

describe('one error handler, keyed on the error code', () => {
  it('answers every code of the table with its status; below 500 with our message, at 503 with the status text only', async () => {
    for (const [code, status] of Object.entries(HTTP_STATUS) as Array<[HttpErrorCode, number]>) {
      const r = await app.inject({ method: 'GET', url: `/test/code/${code}` })
      expect([code, r.statusCode]).toEqual([code, status])
      expect(r.json()).toEqual({ error: code, message: status < 500 ? `refused with ${code}` : 'service unavailable' })
      expect(r.headers['cache-control']).toBe('no-store')
    }
  })

  it('answers the error classes by their code', async () => {
    const answer = async (name: string): Promise<[number, unknown]> => {
      const r = await app.inject({ method: 'GET', url: `/test/thrown/${name}` })
      return [r.statusCode, r.json()]
    }
    expect(await answer('rightsHeld')).toEqual([409, { error: 'ING_ERR_HELD', message: 'a legal hold is in place' }])
    expect(await answer('registryConflict')).toEqual([409, { error: 'ING_ERR_CONFLICT', message: 'device already enrolled' }])
    expect(await answer('userInvalid')).toEqual([400, { error: 'ING_ERR_INVALID', message: 'password too short' }])
    expect(await answer('invalidId')).toEqual([400, { error: 'ING_ERR_ID', message: expect.stringContaining('patient id must match') as unknown }])
    expect(await answer('hasherBusy')).toEqual([503, { error: 'ING_ERR_AUTH_BUSY', message: 'service unavailable' }])
  })

  it('answers an unlisted code or a bug with a 500 that names nothing of it', async () => {
    for (const name of ['storageDown', 'unlistedCode', 'bug']) {
      const r = await app.inject({ method: 'GET', url: `/test/thrown/${name}` })
      if (name === 'storageDown') {
        expect([name, r.statusCode]).toEqual([name, 503])
        expect(r.json()).toEqual({ error: 'ING_ERR_STORAGE', message: 'service unavailable' })
      } else {
        expect([name, r.statusCode]).toEqual([name, 500])
        expect(r.json()).toEqual({ error: 'ING_ERR_INTERNAL', message: 'internal error' })
      }
      expect(r.body).not.toMatch(/SECRET-INTERNAL|ECONNREFUSED|\/var\/lib|fd 17|stack|at .*\.ts/)
    }
  })
})

describe('validation by the route schemas', () => {
  it('answers a refused body, path or query with ING_ERR_INVALID and the issues (where and what), as before', async () => {
    const admin = { authorization: `Bearer ${node.adminToken}` }
    const body = await app.inject({ method: 'POST', url: '/admin/tenants', headers: admin, payload: { tenant: 'no spaces!', displayName: '' } })
    expect(body.statusCode).toBe(400)
    const issues = (body.json<{ issues: string[] }>()).issues
    expect(Object.keys(body.json<object>())).toEqual(['error', 'issues'])
    expect(body.json()).toMatchObject({ error: 'ING_ERR_INVALID' })
    expect(issues).toHaveLength(2)
    expect(issues[0]).toMatch(/^tenant: Invalid string: must match pattern/)
    expect(issues[1]).toMatch(/^displayName: Too small/)
    expect(body.body).not.toContain('no spaces!')
    const query = await app.inject({ method: 'GET', url: '/admin/tenants/care-r/rows?since=-1', headers: admin })
    expect([query.statusCode, query.json<{ issues: string[] }>().issues.map((i) => i.split(':')[0])]).toEqual([400, ['since']])
    const missing = await app.inject({ method: 'POST', url: '/admin/tenants/care-r/patients/r-p1/hold', headers: admin })
    expect([missing.statusCode, missing.json<{ error: string }>().error]).toEqual([400, 'ING_ERR_INVALID'])
    // a left-out optional body is `{}` with its defaults: the dashboard user gets a generated password
    const dash = await app.inject({ method: 'POST', url: '/admin/tenants/care-r/dashboard-user', headers: admin })
    expect(dash.statusCode).toBe(201)
    expect(dash.json()).toMatchObject({ user: 'vf_dash_care-r', applied: false, password: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/) as unknown })
    const token = (await app.inject({ method: 'POST', url: '/api/login', payload: { tenant: 'care-r', user: 'boss', password: PASSWORD } })).json<{ token: string }>().token
    const path = await app.inject({ method: 'GET', url: '/api/patients/bad!id/access-report', headers: { authorization: `Bearer ${token}` } })
    expect([path.statusCode, path.json()]).toEqual([400, { error: 'ING_ERR_INVALID', issues: [expect.stringMatching(/^patient: /) as unknown] }])
  })

  it('checks the session and the admin token before the schema: a bad request without them is a 401', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/patients/bad!id/latest' })).statusCode).toBe(401)
    expect((await app.inject({ method: 'GET', url: '/admin/tenants/bad!id/devices' })).statusCode).toBe(401)
    expect((await app.inject({ method: 'POST', url: '/admin/tenants', payload: { tenant: '' } })).statusCode).toBe(401)
  })
})
