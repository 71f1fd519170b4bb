/**
 * `npm run build:web` (run by `npm start` and by test/web.test.ts when the bundle is missing or
 * stale): web/src bundled by esbuild into web/dist — app.js (Preact, htm, uPlot and the app, one
 * ES module), app.css (uPlot's CSS and ours) and index.html. Nothing is fetched at run time, and
 * nothing inline: the node's CSP allows only its own scripts and styles.
 */
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const WEB = fileURLToPath(new URL('../web/', import.meta.url))
const SRC = join(WEB, 'src')
const OUT = join(WEB, 'dist')
const OUTPUTS = ['index.html', 'app.js', 'app.css']

function newest (dir: string): number {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

/** Whether web/dist is missing a file or older than a source (or than the installed packages). */
export function webBundleStale (): boolean {
  const sources = Math.max(newest(SRC), statSync(join(WEB, 'index.html')).mtimeMs, statSync(fileURLToPath(new URL('../package-lock.json', import.meta.url))).mtimeMs)
  try {
    return OUTPUTS.some((f) => statSync(join(OUT, f)).mtimeMs < sources)
  } catch {
    return true
  }
}

export async function buildWeb (): Promise<void> {
  mkdirSync(OUT, { recursive: true })
  await build({
    entryPoints: { app: join(SRC, 'main.js') },
    outdir: OUT,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    legalComments: 'linked',
    logLevel: 'warning',
  })
  copyFileSync(join(WEB, 'index.html'), join(OUT, 'index.html'))
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await buildWeb()
