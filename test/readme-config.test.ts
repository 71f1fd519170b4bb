// README.md's configuration table is describeConfig() written out: every key of the
// zod schema, with its default and description, and nothing else. A key added to the
// schema without a row (or a row left behind, or a default changed on one side) fails here.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { describeConfig } from '../src/config/index.ts'

interface Row { key: string; default: string; description: string }

/** The rows of the table under `## Configuration` (header and separator skipped). */
function readmeRows (): Row[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0]
  if (section === undefined) throw new Error('README.md has no "## Configuration" section')
  const lines = section.split('\n').filter((l) => l.startsWith('|'))
  expect(lines[0]).toBe('| variable | default | meaning |')
  return lines.slice(2).map((line) => {
    const cells = line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim().replaceAll('\\|', '|'))
    if (cells.length !== 3) throw new Error(`README.md configuration row without three cells: ${line}`)
    const [key, def, description] = cells as [string, string, string]
    return {
      key: key.replace(/^`(.*)`$/, '$1'),
      // no default is written as a dash; a default is written as code
      default: def === '—' ? '' : def.replace(/^`(.*)`$/, '$1'),
      // inline code marks in a description are presentation only
      description: description.replaceAll('`', ''),
    }
  })
}

describe('README configuration table', () => {
  it('lists exactly the keys of the configuration schema, in its order, with its defaults and descriptions', () => {
    const expected = describeConfig().map((r) => ({ ...r, description: r.description.replaceAll('`', '') }))
    const rows = readmeRows()
    expect(rows.map((r) => r.key)).toEqual(expected.map((r) => r.key))
    expect(rows).toEqual(expected)
  })

  it('gives every key a description', () => {
    for (const r of describeConfig()) expect(r.description, r.key).not.toBe('')
  })
})
