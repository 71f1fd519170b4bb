/**
 * The import direction of src/, read from the import statements themselves.
 * A stage may import only stages of a lower rank in ORDER, only through their
 * index.ts (a top-level leaf file is its own face), and only the composition
 * root imports api/. A new folder under src/ fails until it has a place here.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const SRC = join(import.meta.dirname, '..', 'src')

/** Leaf → top. A stage may import those on an earlier line, not its own line's neighbours. */
const ORDER: ReadonlyArray<readonly string[]> = [
  ['errors.ts', 'addresses.ts'],
  ['ids.ts', 'reasons.ts', 'sql.ts', 'backoff.ts', 'capped-map.ts', 'config', 'catalogue'],
  ['crypto'],
  ['decode'],
  ['consent'],
  ['storage'],
  ['registry'],
  ['broker', 'rights', 'cluster'],
  ['api'],
  ['pipeline'],
  ['main.ts', 'admin-cli.ts'],
]

/** The only modules that may import api/: they build the node or talk to its admin API. */
const API_CLIENTS: readonly string[] = ['pipeline/node.ts', 'admin-cli.ts', 'main.ts']

const RANK = new Map(ORDER.flatMap((stages, rank) => stages.map((s) => [s, rank] as const)))

/** 'storage/rows.ts' → 'storage'; 'ids.ts' → 'ids.ts'. */
function stageOf (path: string): string {
  return path.split('/')[0]!
}

/** Relative specifiers of every static import, re-export and dynamic import. */
function importsOf (source: string): string[] {
  const out: string[] = []
  for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\b(?:[^;'"]*?\bfrom\s*|\s*)'(\.[^']+)'/g)) out.push(m[1]!)
  for (const m of source.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g)) out.push(m[1]!)
  return out
}

/** Violations of the layering among files given as path (relative to src/, with '/') → source. */
function violations (files: ReadonlyMap<string, string>): string[] {
  const out: string[] = []
  for (const [file, source] of files) {
    const from = stageOf(file)
    const fromRank = RANK.get(from)
    if (fromRank === undefined) { out.push(`${file}: stage ${from} has no place in ORDER`); continue }
    for (const spec of importsOf(source)) {
      const target = join(file, '..', spec).split('\\').join('/')
      if (target.startsWith('..')) { out.push(`${file}: imports ${spec}, outside src/`); continue }
      const to = stageOf(target)
      if (to === from) continue
      const toRank = RANK.get(to)
      if (toRank === undefined) { out.push(`${file}: imports ${spec}, stage ${to} has no place in ORDER`); continue }
      if (toRank >= fromRank) out.push(`${file}: ${from} imports ${to} (${spec}), which is not below it`)
      if (to === 'api' && !API_CLIENTS.includes(file)) out.push(`${file}: imports api/ (${spec}); only ${API_CLIENTS.join(', ')} may`)
      if (!to.endsWith('.ts') && target !== `${to}/index.ts`) out.push(`${file}: imports ${spec}, past ${to}/index.ts`)
    }
  }
  return out
}

function sources (dir: string, into = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) sources(p, into)
    else if (e.name.endsWith('.ts')) into.set(relative(SRC, p).split('\\').join('/'), readFileSync(p, 'utf8'))
  }
  return into
}

describe('layering of src/', () => {
  it('every import goes down the stage order, through index.ts, and only the composition root imports api/', () => {
    const files = sources(SRC)
    expect(files.size).toBeGreaterThan(50)
    expect(violations(files)).toEqual([])
  })

  it('finds multi-line, type-only, re-exported and dynamic imports', () => {
    const src = [
      "import type {\n  A,\n  B,\n} from '../a/index.ts'",
      "export { C } from './c.ts'",
      "import './side-effect.ts'",
      "const m = await import('../d/index.ts')",
      "import pino from 'pino'",
      "export const ROOT = new URL('../../web/dist/', import.meta.url)",
    ].join('\n')
    expect(importsOf(src)).toEqual(['../a/index.ts', './c.ts', './side-effect.ts', '../d/index.ts'])
  })

  it('reports an import of a later stage, of api/, past an index.ts, and of an unplaced stage', () => {
    const found = violations(new Map([
      ['consent/retention.ts', "import { sqlString } from '../storage/index.ts'"],
      ['pipeline/ingest.ts', "import type { AlarmNotice } from '../api/index.ts'"],
      ['rights/export.ts', "import type { StorageConnection } from '../storage/connection.ts'"],
      ['broker/broker.ts', "import type { Rights } from '../rights/index.ts'"],
      ['widgets/w.ts', "import { x } from '../ids.ts'"],
      ['storage/rows.ts', "import { covers } from '../consent/index.ts'\nimport { RowWriter } from './row-binary.ts'"],
    ]))
    expect(found).toEqual([
      'consent/retention.ts: consent imports storage (../storage/index.ts), which is not below it',
      'pipeline/ingest.ts: imports api/ (../api/index.ts); only pipeline/node.ts, admin-cli.ts, main.ts may',
      'rights/export.ts: imports ../storage/connection.ts, past storage/index.ts',
      'broker/broker.ts: broker imports rights (../rights/index.ts), which is not below it',
      'widgets/w.ts: stage widgets has no place in ORDER',
    ])
  })
})
