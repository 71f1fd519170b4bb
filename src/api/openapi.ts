/** The OpenAPI 3.1 document of the clinician API, generated from the same zod schemas the routes validate with. */
import { z } from 'zod'
import type { RouteDoc } from './clinician.ts'

export function openApiDocument (routes: RouteDoc[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const r of routes) {
    const parameters: unknown[] = []
    for (const [where, schema] of [['path', r.params], ['query', r.query]] as const) {
      if (schema === undefined) continue
      const json = z.toJSONSchema(schema, { io: 'input' }) as { properties?: Record<string, unknown>; required?: string[] }
      for (const [name, s] of Object.entries(json.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (json.required ?? []).includes(name), schema: s })
      }
    }
    paths[r.path] ??= {}
    paths[r.path]![r.method.toLowerCase()] = {
      summary: r.summary,
      ...(r.roles === 'public' ? { security: [] } : { 'x-roles': r.roles }),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(r.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input' }) } } } }),
      responses: { 200: { description: 'OK' }, 401: { description: 'not logged in or session expired' }, 403: { description: 'role may not read this' }, 404: { description: 'not found (also: another tenant\'s id)' } },
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'vitalflow clinician API', version: '1' },
    components: { securitySchemes: { session: { type: 'http', scheme: 'bearer' } } },
    security: [{ session: [] }],
    paths,
  }
}
