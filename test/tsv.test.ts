import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { tsvString, tsvStringArray } from '../src/storage/tsv.ts'

/** Independent unescaper for ClickHouse's TabSeparated escaping. */
function unescape (s: string): string {
  const map: Record<string, string> = { t: '\t', n: '\n', r: '\r', '0': '\0', b: '\b', f: '\f' }
  let out = ''
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '\\') { out += s[i]; continue }
    const c = s[++i]!
    out += map[c] ?? c
  }
  return out
}

function parseArray (s: string): string[] {
  expect(s.startsWith('[') && s.endsWith(']')).toBe(true)
  const items: string[] = []
  let i = 1
  while (i < s.length - 1) {
    expect(s[i]).toBe("'")
    let raw = ''
    i++
    while (s[i] !== "'") { if (s[i] === '\\') raw += s[i++]; raw += s[i++] }
    items.push(unescape(raw))
    i++
    if (s[i] === ',') i++
  }
  return items
}

describe('TabSeparated encoding', () => {
  it('escapes so that every string round-trips and no raw separator survives', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      const e = tsvString(s)
      expect(e).not.toMatch(/[\t\n\r]/)
      expect(unescape(e)).toBe(s)
    }), { numRuns: 2000 })
  })

  it('encodes Array(String) fields that parse back to the same array', () => {
    fc.assert(fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 30 }), { maxLength: 8 }), (items) => {
      const e = tsvStringArray(items)
      expect(e).not.toMatch(/[\t\n\r]/)
      expect(parseArray(e)).toEqual(items)
    }), { numRuns: 1000 })
  })
})
