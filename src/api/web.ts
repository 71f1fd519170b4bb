/**
 * The care web app (web/, bundled into web/dist by `npm run build:web`), served as static
 * files on the API's port. It reads only through /api, like every other client. Files get
 * the same answers' headers as the API (strict CSP, `Cache-Control: no-store`). A browser's
 * page request (Accept: text/html) for a path that is not the API's gets index.html, so a
 * reload on any path opens the app; the app routes with the URL's hash, which keeps patient
 * ids out of request lines and server logs. Without a bundle nothing is served here.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/** web/dist beside src/ (and beside dist/ after `npm run build`). */
export const WEB_ROOT = fileURLToPath(new URL('../../web/dist/', import.meta.url))

const NOT_THE_APP = /^\/(api|admin|metrics|healthz|readyz)(\/|\?|$)/

export interface WebApp {
  /** Adds the static routes (/, /app.js, /app.css, ...). */
  register: (app: FastifyInstance) => void
  /** For the not-found handler: answers a browser's page request with index.html; false when it is not one. */
  fallback: (req: FastifyRequest, reply: FastifyReply) => boolean
}

/** The web app of a bundle directory, or null when it holds no bundle (not built). */
export function createWebApp (root = WEB_ROOT): WebApp | null {
  if (!existsSync(join(root, 'index.html'))) return null
  return {
    register: (app) => {
      // wildcard: false: one route per bundled file, found at start-up; no catch-all that would
      // shadow the API's own answers (404, 414) for paths it does not know
      void app.register(fastifyStatic, { root, wildcard: false, index: 'index.html', cacheControl: false, dotfiles: 'deny' })
    },
    fallback: (req, reply) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false
      const path = req.url
      if (NOT_THE_APP.test(path) || /\.[A-Za-z0-9]+(\?|$)/.test(path.split('#')[0]!)) return false
      if (!(req.headers.accept ?? '').includes('text/html')) return false
      void reply.code(200).sendFile('index.html')
      return true
    },
  }
}
