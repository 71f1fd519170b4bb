/** HTTP client of the admin API, for the admin CLI and the simulator. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../config/index.ts'
import { VitalflowError } from '../errors.ts'

/** The header of a GET /admin/tenants/:t/sequences answer with the `storedSince` to poll with next. */
export const STORED_SINCE_HEADER = 'x-vitalflow-stored-since'

/** The admin API refused (status and body as it answered). */
export class AdminApiError extends VitalflowError<'ING_ERR_UPSTREAM'> {
  constructor (readonly status: number, readonly body: unknown) {
    super('ING_ERR_UPSTREAM', `admin API answered ${status}: ${JSON.stringify(body)}`)
  }
}

export interface AdminClient {
  baseUrl: string
  request: <T = unknown>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown) => Promise<T>
  /** A GET's JSON answer with the answer's headers (a poll cursor: GET /admin/tenants/:t/sequences). */
  getWithHeaders: <T = unknown>(path: string) => Promise<{ body: T; headers: Headers }>
  /** A file as the body (bulk enrolment): the status and the JSON answer, also when it refused. */
  upload: <T = unknown>(path: string, contentType: string, body: string) => Promise<{ status: number; body: T }>
  /** A streamed answer (exports), piped to `out` as it arrives. */
  download: (path: string, out: NodeJS.WritableStream) => Promise<void>
  /** The Prometheus text of /metrics (bearer: the metrics token). */
  metrics: () => Promise<string>
}

/** `metricsToken`: what /metrics wants (VF_METRICS_TOKEN); the admin token when the node has none of its own. */
export function createAdminClient (baseUrl: string, token: string, metricsToken: string = token): AdminClient {
  async function answer<T> (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ body: T; headers: Headers }> {
    let res: Response
    try {
      res = await fetch(baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? null : JSON.stringify(body),
      })
    } catch (cause) {
      throw new Error(`no ingest node answers at ${baseUrl}; start one with \`npm start\` (same VF_* settings)`, { cause })
    }
    const text = await res.text()
    const parsed: unknown = text === '' ? null : JSON.parse(text)
    if (!res.ok) throw new AdminApiError(res.status, parsed)
    return { body: parsed as T, headers: res.headers }
  }
  return {
    baseUrl,
    async metrics () {
      const res = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })
      if (!res.ok) throw new AdminApiError(res.status, await res.text())
      return await res.text()
    },
    async request<T> (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
      return (await answer<T>(method, path, body)).body
    },
    async getWithHeaders<T> (path: string) {
      return await answer<T>('GET', path)
    },
    async upload<T> (path: string, contentType: string, body: string): Promise<{ status: number; body: T }> {
      const res = await fetch(baseUrl + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body })
      const text = await res.text()
      return { status: res.status, body: (text === '' ? null : JSON.parse(text)) as T }
    },
    async download (path, out) {
      const res = await fetch(baseUrl + path, { headers: { authorization: `Bearer ${token}` } })
      if (!res.ok || res.body === null) throw new AdminApiError(res.status, await res.text())
      const { Readable } = await import('node:stream')
      const { pipeline } = await import('node:stream/promises')
      await pipeline(Readable.fromWeb(res.body), out, { end: false })
    },
  }
}

/** The admin client for the node configured by the same VF_* settings (token from the data directory if not set). */
export function adminClientFor (config: Config): AdminClient {
  const token = config.ADMIN_TOKEN ?? readFileSync(join(config.DATA_DIR, 'admin-token'), 'utf8').trim()
  const host = config.HTTP_HOST === '0.0.0.0' ? '127.0.0.1' : config.HTTP_HOST
  return createAdminClient(`http://${host}:${config.HTTP_PORT}`, token, config.METRICS_TOKEN ?? token)
}
