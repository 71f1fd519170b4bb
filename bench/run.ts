/** `npm run bench`: runs every bench/*.bench.ts in its own process and prints one JSON document. */
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const only = process.argv.slice(2)
const files = readdirSync(dir).filter((f) => f.endsWith('.bench.ts') && (only.length === 0 || only.some((o) => f.includes(o)))).sort()
const results: unknown[] = []
for (const f of files) {
  process.stderr.write(`bench: ${f}\n`)
  const out = execFileSync(process.execPath, ['--import', 'tsx', `${dir}${f}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  results.push(JSON.parse(out))
}
process.stdout.write(JSON.stringify(results, null, 2) + '\n')
