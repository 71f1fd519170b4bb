/**
 * What the browser tests share: Debian's Chromium launched by playwright-core,
 * axe-core run in a page (serious and critical violations only), and a small
 * JSON client of the node's HTTP API.
 */
import { createRequire } from 'node:module'
import { chromium, type Browser, type Page } from 'playwright-core'

const AXE_SOURCE = (createRequire(import.meta.url)('axe-core') as { source: string }).source
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']

/** The system Chromium (the browser downloads of playwright cannot run here); `extraArgs` e.g. an autoplay policy. */
export async function launchChromium (extraArgs: string[] = []): Promise<Browser> {
  return await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...ARGS, ...extraArgs] })
}

/** axe-core's serious and critical violations on the page as it is now, as `id (impact, n nodes)`. */
export async function axeViolations (p: Page): Promise<string[]> {
  await p.evaluate(AXE_SOURCE)
  return await p.evaluate(async () => {
    const r = await (globalThis as unknown as { axe: { run: (ctx: unknown, o: unknown) => Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> } })
      .axe.run((globalThis as unknown as { document: unknown }).document, { resultTypes: ['violations'] })
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes)`)
  })
}

export interface ApiAnswer<T = unknown> { status: number; json: T }

/** A JSON call to the node's HTTP API at `base()`, with a bearer token when given. */
export function apiClient (base: () => string) {
  return async <T = unknown>(method: string, path: string, token?: string, body?: unknown): Promise<ApiAnswer<T>> => {
    const r = await fetch(base() + path, {
      method,
      headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? null : JSON.stringify(body),
    })
    const text = await r.text()
    return { status: r.status, json: (text === '' ? null : JSON.parse(text)) as T }
  }
}
