/**
 * Looks for a string everywhere a node writes: every file under a data
 * directory, as raw bytes in each encoding we use (utf8, and for safety
 * utf16le and hex), and inside ClickHouse's compressed blocks (LZ4 and
 * uncompressed blocks are decoded here; blocks of other codecs are counted, and
 * the store is read back through a fresh chDB session in read-store.mjs).
 */
import { execFileSync } from 'node:child_process'
import { cpSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Hit { file: string; where: 'raw' | 'lz4' | 'none' }

function encodings (needle: string): Buffer[] {
  return [Buffer.from(needle, 'utf8'), Buffer.from(needle, 'utf16le'), Buffer.from(Buffer.from(needle, 'utf8').toString('hex'), 'latin1')]
}

function filesUnder (dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...filesUnder(p))
    else if (e.isFile()) out.push(p)
  }
  return out
}

/** LZ4 block format (what ClickHouse's LZ4 codec writes). */
function lz4Block (src: Buffer, outLen: number): Buffer {
  const out = Buffer.alloc(outLen)
  let i = 0
  let o = 0
  while (i < src.length) {
    const token = src[i++]!
    let lit = token >> 4
    if (lit === 15) { let b: number; do { b = src[i++]!; lit += b } while (b === 255 && i < src.length) }
    src.copy(out, o, i, i + lit)
    i += lit
    o += lit
    if (i >= src.length) break
    const off = src[i]! | (src[i + 1]! << 8)
    i += 2
    let len = token & 15
    if (len === 15) { let b: number; do { b = src[i++]!; len += b } while (b === 255 && i < src.length) }
    len += 4
    if (off === 0 || off > o || o + len > outLen) throw new Error('not an LZ4 block')
    for (let k = 0; k < len; k++) { out[o] = out[o - off]!; o++ }
  }
  if (o !== outLen) throw new Error('not an LZ4 block')
  return out
}

const NONE = 0x02
const LZ4 = 0x82

/**
 * Splits a ClickHouse compressed stream (16-byte checksum, method byte, u32
 * compressed size including the 9-byte header, u32 decompressed size, payload)
 * into blocks; null when the bytes are not such a stream.
 */
function compressedBlocks (buf: Buffer): Array<{ method: number; payload: Buffer; size: number }> | null {
  const blocks: Array<{ method: number; payload: Buffer; size: number }> = []
  let o = 0
  while (o < buf.length) {
    if (o + 25 > buf.length) return null
    const method = buf[o + 16]!
    const compressed = buf.readUInt32LE(o + 17)
    const size = buf.readUInt32LE(o + 21)
    if (compressed < 9 || o + 16 + compressed > buf.length || size > 1 << 30) return null
    blocks.push({ method, payload: buf.subarray(o + 25, o + 16 + compressed), size })
    o += 16 + compressed
  }
  return blocks.length === 0 ? null : blocks
}

export interface ScanReport { files: number; bytes: number; decodedBlocks: number; otherCodecBlocks: number; hits: Hit[] }

/** Every file under `dir`: raw bytes, then (for ClickHouse streams) each decoded block. */
export function scanDataDir (dir: string, needle: string): ScanReport {
  const needles = encodings(needle)
  const report: ScanReport = { files: 0, bytes: 0, decodedBlocks: 0, otherCodecBlocks: 0, hits: [] }
  for (const file of filesUnder(dir)) {
    const buf = readFileSync(file)
    report.files++
    report.bytes += buf.length
    const name = relative(dir, file)
    if (needles.some((n) => buf.includes(n))) report.hits.push({ file: name, where: 'raw' })
    // checksums.txt: a text line, then a compressed stream
    const prefix = buf.subarray(0, 32).toString('latin1').match(/^checksums format version: \d+\n/)?.[0].length ?? 0
    const blocks = compressedBlocks(buf.subarray(prefix))
    if (blocks === null) continue
    for (const b of blocks) {
      let plain: Buffer
      if (b.method === NONE) plain = b.payload
      else if (b.method === LZ4) {
        try { plain = lz4Block(b.payload, b.size) } catch { continue }
      } else { report.otherCodecBlocks++; continue }
      report.decodedBlocks++
      if (needles.some((n) => plain.includes(n))) { report.hits.push({ file: name, where: b.method === LZ4 ? 'lz4' : 'none' }); break }
    }
  }
  return report
}

export interface StoreReadback { tables: number; rows: number; holding: Record<string, number>; parts: Array<{ table: string; name: string; active: number }>; detached: number; mutations: string[] }

/**
 * Reads a copy of a stopped node's chDB directory in a fresh chDB process:
 * every column of every table as text (deleted-row masks off), every part's
 * state, detached parts, mutation records. A copy, because opening a store
 * lets ClickHouse clean it up, which would hide what the files held.
 */
export function readStore (chdbDir: string, scratch: string, needle: string): StoreReadback {
  cpSync(chdbDir, scratch, { recursive: true })
  const script = fileURLToPath(new URL('./read-store.mjs', import.meta.url))
  const out = execFileSync(process.execPath, [script, scratch, needle], { encoding: 'utf8', maxBuffer: 64 << 20 })
  return JSON.parse(out.trim().split('\n').at(-1)!) as StoreReadback
}
