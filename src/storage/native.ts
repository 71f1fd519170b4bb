/**
 * RowBinary rows re-laid as one block of ClickHouse's Native format (columns one after another).
 * Embedded chDB parses Native about three times faster than RowBinary: 100,000 sample rows in
 * ~65 ms of CPU against ~250 ms (bench/RESULTS.md, 2026-12-03, eighth session), and the samples'
 * inserts were the node's largest cost after its own thread. The write-ahead log keeps RowBinary, one
 * chunk per message; the batch is re-laid once, at insert time, on a worker thread of its own (native-relay.ts).
 *
 * Native with no client revision (what the `Native` input format reads): per block the column count and
 * row count (LEB128), then per column its name and type (strings) and its values. A String column's
 * values are LEB128 length + bytes each, as in RowBinary; a fixed-width column's are its little-endian
 * values back to back; Nullable(T) is a byte per row (1 = NULL) and then T's values. LowCardinality(String)
 * is sent as String: ClickHouse builds the dictionary on insert (measured as fast as sending it encoded).
 *
 * `relayRows` and `stringEnd` are plain JavaScript once compiled and use nothing from outside them but
 * each other, and no function of their own (a transpiler may wrap those in helpers): their source is
 * what the relay worker evaluates, with no loader there (native-relay.ts).
 */

/** How a column is laid out: a string (`0`), a fixed width in bytes, or Nullable of a fixed width (negative). */
export type ColumnLayout = number

const FIXED: Readonly<Record<string, number>> = {
  UInt8: 1, Int8: 1, Bool: 1, UInt16: 2, Int16: 2, Date: 2, UInt32: 4, Int32: 4, Float32: 4, DateTime: 4, Date32: 4,
  UInt64: 8, Int64: 8, Float64: 8, DateTime64: 8, UUID: 16, UInt128: 16, Int128: 16,
}

function fixedWidth (type: string): number | undefined {
  const base = /^(\w+)/.exec(type)?.[1] ?? ''
  // DateTime64(3, 'UTC') and DateTime('UTC') carry parameters that do not change their width
  if (base === 'DateTime64' || base === 'DateTime') return FIXED[base]
  return type === base ? FIXED[base] : undefined
}

/**
 * The layout of every column, and the type each is sent as, or null when a type is not one Native
 * is written for here (arrays, maps and the like: such a table keeps RowBinary).
 */
export function nativeLayout (types: readonly string[]): { layout: ColumnLayout[]; sentAs: string[] } | null {
  const layout: ColumnLayout[] = []
  const sentAs: string[] = []
  for (const type of types) {
    if (type === 'String' || type === 'LowCardinality(String)') { layout.push(0); sentAs.push('String'); continue }
    const nullable = /^Nullable\((.+)\)$/.exec(type)?.[1]
    const width = fixedWidth(nullable ?? type)
    if (width === undefined) return null
    layout.push(nullable === undefined ? width : -width)
    sentAs.push(type)
  }
  return { layout, sentAs }
}

/**
 * Where the RowBinary string at `o` ends (after its LEB128 length and bytes); NaN when its length runs
 * past the rows.
 */
export function stringEnd (rows: Uint8Array, o: number): number {
  let len = rows[o++]!
  if (len >= 0x80) {
    len &= 0x7f
    for (let mul = 0x80; ; mul *= 0x80) {
      if (o >= rows.length) return NaN
      const b = rows[o++]!
      len += (b & 0x7f) * mul
      if (b < 0x80) break
    }
  }
  return o + len
}

/**
 * The Native block of `rows` (RowBinary, columns as `layout`), with the header of `names`/`sentAs`.
 * Throws a RangeError when the rows end inside a row or a string overruns them.
 */
export function relayRows (rows: Uint8Array, layout: readonly number[], names: readonly string[], sentAs: readonly string[]): { block: Uint8Array; rows: number } {
  const ncols = layout.length
  const end = rows.length
  const lay = Int32Array.from(layout)
  const strBytes = new Float64Array(ncols)
  // pass 1: count the rows and each string column's bytes
  let n = 0
  let o = 0
  while (o < end) {
    for (let c = 0; c < ncols; c++) {
      const l = lay[c]!
      if (l === 0) {
        const e = stringEnd(rows, o)
        strBytes[c]! += e - o
        o = e
      } else if (l > 0) o += l
      else o += rows[o] === 1 ? 1 : 1 - l
    }
    // a read past the end is undefined, and everything after it NaN
    if (!(o <= end)) throw new RangeError('rows end inside a row')
    n++
  }
  // the block's column and row counts, and before each column's values its name and type (LEB128 + bytes)
  const head = new Uint8Array(20)
  let k = 0
  for (const count of [ncols, n]) {
    for (let v = count; ; v = Math.floor(v / 0x80)) { if (v < 0x80) { head[k++] = v; break } head[k++] = (v % 0x80) | 0x80 }
  }
  const headLength = k
  const text = new TextEncoder()
  const headers: Uint8Array[] = []
  for (let c = 0; c < ncols; c++) {
    const name = text.encode(names[c])
    const type = text.encode(sentAs[c])
    const h = new Uint8Array(20 + name.length + type.length)
    k = 0
    for (const bytes of [name, type]) {
      for (let v = bytes.length; ; v = Math.floor(v / 0x80)) { if (v < 0x80) { h[k++] = v; break } h[k++] = (v % 0x80) | 0x80 }
      h.set(bytes, k)
      k += bytes.length
    }
    headers.push(h.subarray(0, k))
  }
  // where each column's values start in the block
  const start = new Float64Array(ncols)
  let size = headLength
  for (let c = 0; c < ncols; c++) {
    size += headers[c]!.length
    start[c] = size
    const l = lay[c]!
    size += l === 0 ? strBytes[c]! : l > 0 ? n * l : n * (1 - l)
  }
  const out = new Uint8Array(size)
  out.set(head.subarray(0, headLength), 0)
  // a Nullable column's values follow its n null-map bytes
  const cur = start.slice()
  const vals = new Float64Array(ncols)
  for (let c = 0; c < ncols; c++) {
    out.set(headers[c]!, start[c]! - headers[c]!.length)
    if (lay[c]! < 0) vals[c] = start[c]! + n
  }
  // pass 2: each field to its column
  o = 0
  while (o < end) {
    for (let c = 0; c < ncols; c++) {
      const l = lay[c]!
      let d = cur[c]!
      if (l === 0) {
        const e = stringEnd(rows, o)
        if (e - o > 48) { out.set(rows.subarray(o, e), d); d += e - o } else for (let i = o; i < e; i++) out[d++] = rows[i]!
        o = e
      } else if (l > 0) {
        for (let i = 0; i < l; i++) out[d++] = rows[o++]!
      } else {
        const isNull = rows[o++] === 1
        out[d++] = isNull ? 1 : 0
        // a NULL's value is written as zeros (the block was allocated zeroed)
        let v = vals[c]!
        if (!isNull) for (let i = 0; i < -l; i++) out[v + i] = rows[o++]!
        v -= l
        vals[c] = v
      }
      cur[c] = d
    }
  }
  return { block: out, rows: n }
}
