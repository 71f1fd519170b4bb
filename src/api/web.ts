/**
 * The care web app (web/, bundled into web/dist by `npm run build:web`), served as static
 * files on the API's port. It reads only through /api, like every other client. Files get
 * the same answers' headers as the API (strict CSP, `Cache-Control: no-store`). A browser's
 * page request (Accept: text/html) for a path that is not the API's gets index.html, so a
 * reload on any path opens the app; the app routes with the URL's hash, which keeps patient
 * ids out of request lines and server logs. Without a bundle nothing is served here.
 *
 * The bundle is a handful of files read once at start: one route each, no file-system
 * lookups per request and no dependency for it (@fastify/static 10 pulls a package that
 * requires Node 22).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { extname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
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

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.woff2': 'font/woff2', '.ico': 'image/x-icon',
}

function filesOf (dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    if (f.startsWith('.')) return []
    return statSync(p).isDirectory() ? filesOf(p) : [p]
  })
}

/** The web app of a bundle directory, or null when it holds no bundle (not built). */
export function createWebApp (root = WEB_ROOT): WebApp | null {
  const indexPath = join(root, 'index.html')
  if (!existsSync(indexPath)) return null
  const index = readFileSync(indexPath)
  const sendIndex = (reply: FastifyReply): FastifyReply => reply.code(200).type(TYPES['.html']!).send(index)
  return {
    register: (app) => {
      // one route per bundled file, found at start-up; no catch-all that would shadow the
      // API's own answers (404, 414) for paths it does not know
      app.get('/', async (_req, reply) => sendIndex(reply))
      for (const file of filesOf(root)) {
        const url = '/' + relative(root, file).split(sep).join('/')
        const body = readFileSync(file)
        const type = TYPES[extname(file)] ?? 'application/octet-stream'
        app.get(url, async (_req, reply) => reply.type(type).send(body))
      }
    },
    fallback: (req, reply) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false
      const path = req.url
      if (NOT_THE_APP.test(path) || /\.[A-Za-z0-9]+(\?|$)/.test(path.split('#')[0]!)) return false
      if (!(req.headers.accept ?? '').includes('text/html')) return false
      void sendIndex(reply)
      return true
    },
  }
}
