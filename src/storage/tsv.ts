/** TabSeparated field encoding (ClickHouse's escaping rules), for the batcher's row bodies. */
const NEEDS_ESCAPE = /[\\\t\n\r\0']/

export function tsvString (s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return s
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    switch (c) {
      case '\\': out += '\\\\'; break
      case '\t': out += '\\t'; break
      case '\n': out += '\\n'; break
      case '\r': out += '\\r'; break
      case '\0': out += '\\0'; break
      case "'": out += "\\'"; break
      default: out += c
    }
  }
  return out
}

/** An Array(String) field: ['a','b'] with quoted, escaped elements. */
export function tsvStringArray (items: readonly string[]): string {
  if (items.length === 0) return '[]'
  let out = '['
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += ','
    out += "'" + tsvString(items[i]!) + "'"
  }
  return out + ']'
}

export const NULL = '\\N'

export function tsvNullable (v: number | null | undefined): string {
  return v == null ? NULL : String(v)
}
