/**
 * What every HTTP answer of the node shares, in one place: security headers
 * (helmet, with a strict Content-Security-Policy for a web app the node may
 * serve later: only its own scripts, no inline ones), `Cache-Control:
 * no-store` (answers carry personal data or tokens), and the one error
 * handler. An error body is `{ error: <stable code>, message: <our own
 * text> }`: it never carries request data (path, query, headers, body), and
 * the status line's text is the status's own.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import helmet, { type HelmetOptions } from 'helmet'
import { httpStatusOf, isVitalflowError } from '../errors.ts'

const HELMET_OPTIONS: Readonly<HelmetOptions> = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      'default-src': ["'self'"],
      'script-src': ["'self'"],
      'script-src-attr': ["'none'"],
      'style-src': ["'self'"],
      'img-src': ["'self'", 'data:'],
      'font-src': ["'self'"],
      'connect-src': ["'self'"],
      'object-src': ["'none'"],
      'base-uri': ["'none'"],
      'form-action': ["'self'"],
      'frame-ancestors': ["'none'"],
    },
  },
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
}

const secure = helmet(HELMET_OPTIONS)

/** Sets the security headers and `Cache-Control: no-store` on the raw response, so hijacked answers (SSE, export streams) carry them too. */
function setAnswerHeaders (req: IncomingMessage, res: ServerResponse): void {
  secure(req, res, (err?: unknown) => { if (err !== undefined && err !== null) throw err instanceof Error ? err : new Error('security headers failed', { cause: err }) })
  res.setHeader('cache-control', 'no-store')
}

export interface ErrorAnswer { status: number; body: { error: string; message: string } | { error: 'ING_ERR_INVALID'; issues: string[] } }

/** Codes of statuses that the framework or the HTTP parser answers by themselves. */
const BY_STATUS: Record<number, string> = {
  400: 'ING_ERR_REQUEST', 401: 'ING_ERR_AUTH', 403: 'ING_ERR_ROLE', 404: 'ING_ERR_NOT_FOUND', 405: 'ING_ERR_METHOD', 406: 'ING_ERR_NOT_ACCEPTABLE',
  408: 'ING_ERR_TIMEOUT', 409: 'ING_ERR_CONFLICT', 411: 'ING_ERR_LENGTH_REQUIRED', 413: 'ING_ERR_TOO_LARGE', 414: 'ING_ERR_URI_TOO_LONG',
  415: 'ING_ERR_MEDIA_TYPE', 429: 'ING_ERR_RATE', 431: 'ING_ERR_HEADERS_TOO_LARGE', 503: 'ING_ERR_UNAVAILABLE',
}

/** The answer to a status with nothing of the request in it. */
function statusAnswer (status: number): { status: number; body: { error: string; message: string } } {
  const s = Number.isInteger(status) && status >= 400 && status <= 599 && STATUS_CODES[status] !== undefined ? status : 500
  return { status: s, body: { error: BY_STATUS[s] ?? (s >= 500 ? 'ING_ERR_INTERNAL' : 'ING_ERR_REQUEST'), message: s >= 500 && s !== 503 ? 'internal error' : STATUS_CODES[s]!.toLowerCase() } }
}

/**
 * The answer to an error, keyed on its code. A request its route's schema refused: `ING_ERR_INVALID` with
 * the issues (where and what, never the value sent). Our own errors (VitalflowError) carry a stable code,
 * answered with the status of src/errors.ts's table and, below 500, the message we wrote (it names no
 * request value); at 500 and over only the status's text, since a cause may name internals. Anything else
 * (the framework's: bad JSON, too large, bad URL, ...; or a bug) is answered by its status alone, because
 * its message may quote the request or the code.
 */
function errorAnswer (err: unknown): ErrorAnswer {
  if (hasZodFastifySchemaValidationErrors(err)) {
    return { status: 400, body: { error: 'ING_ERR_INVALID', issues: err.validation.map((i) => `${i.instancePath.slice(1).replaceAll('/', '.')}: ${i.message}`) } }
  }
  if (isVitalflowError(err)) {
    const status = httpStatusOf(err.code)
    if (status >= 500) return status === 500 ? statusAnswer(500) : { status, body: { error: err.code, message: statusAnswer(status).body.message } }
    return { status, body: { error: err.code, message: err.message } }
  }
  const status = (err as { statusCode?: unknown } | null)?.statusCode
  return statusAnswer(typeof status === 'number' && status >= 400 ? status : 500)
}

function send (reply: FastifyReply, a: ErrorAnswer): FastifyReply {
  return reply.code(a.status).type('application/json; charset=utf-8').send(a.body)
}

/** For fastify's `frameworkErrors`: errors met before routing (a bad URL, a parameter too long), when no hook has run yet. */
export function frameworkError (err: unknown, req: { raw: IncomingMessage }, reply: FastifyReply): void {
  setAnswerHeaders(req.raw, reply.raw)
  void send(reply, errorAnswer(err))
}

/** For fastify's `clientErrorHandler`: a request the HTTP parser refused (malformed, headers too large, timed out). */
export function clientError (err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const a = statusAnswer(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400)
  const body = JSON.stringify(a.body)
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${a.status} ${STATUS_CODES[a.status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `cache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n${body}`)
  }
  socket.destroy(err)
}

/**
 * Headers on every answer, the error handler, and the not-found answer. Call before any route is added.
 * `fallback` may answer a request no route matched first (the web app's page requests); false: a 404.
 */
export function registerAnswers (app: FastifyInstance, fallback?: (req: FastifyRequest, reply: FastifyReply) => boolean): void {
  app.addHook('onRequest', (req, reply, done) => { setAnswerHeaders(req.raw, reply.raw); done() })
  app.setErrorHandler((err, _req, reply) => send(reply, errorAnswer(err)))
  app.setNotFoundHandler((req, reply) => fallback?.(req, reply) === true ? reply : send(reply, statusAnswer(404)))
}
