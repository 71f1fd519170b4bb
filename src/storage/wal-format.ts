/**
 * The write-ahead log's on-disk format and its errors (the log itself is in wal.ts).
 *
 * Segment files DATA_DIR/wal/<first lsn, 16 digits>.wal hold records:
 *   u32 body length | u32 crc32(body) | body
 *   body = u8 type | u48 lsn | u8 table name length | table name | rest
 *   DATA   (1): rest = u32 rows | RowBinary rows
 *   INTENT (2): rest = u48 first lsn | u48 last lsn
 * A record whose length or checksum does not hold ends its segment.
 */
import { crc32 } from 'node:zlib'
import { VitalflowError } from '../errors.ts'

export const DATA = 1
export const INTENT = 2
export const HEAD = 8
export const SEGMENT_NAME = /^\d{16}\.wal$/

export interface WalRecord { lsn: number; table: string; rows: number; chunk: Buffer }
export interface WalIntent { lsn: number; table: string; first: number; last: number }

export type WalErrorCode = 'ING_ERR_DISK_FULL' | 'ING_ERR_WAL_IO' | 'ING_ERR_WAL_CLOSED'

/** The log did not take a record; nothing of it is acknowledged. */
export class WalError extends VitalflowError<WalErrorCode> {}

/** Whether the log takes data now, and if not since when and why. */
export type WalState = { writable: true } | { writable: false; code: WalErrorCode; sinceMs: number }

const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG'])

export function asWalError (err: unknown): WalError {
  if (err instanceof WalError) return err
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && FULL_CODES.has(code)
    ? new WalError('ING_ERR_DISK_FULL', 'no space left for the write-ahead log', { cause: err })
    : new WalError('ING_ERR_WAL_IO', 'write-ahead log write failed', { cause: err })
}

/** The bytes of one record: what encodeInto writes. */
export function recordBytes (table: string, ...rest: Uint8Array[]): number {
  return HEAD + 1 + 6 + 1 + Buffer.byteLength(table, 'latin1') + rest.reduce((n, r) => n + r.length, 0)
}

/**
 * One record, written into `out` at `at` (room for recordBytes() made by the caller); returns the offset
 * after it. The log writes a group commit's records one after the other into one buffer it reuses, so a
 * record costs no allocation of its own and no second copy when the group is written.
 */
export function encodeInto (out: Buffer, at: number, type: number, lsn: number, table: string, ...rest: Uint8Array[]): number {
  const nameLen = Buffer.byteLength(table, 'latin1')
  out.writeUInt32LE(recordBytes(table, ...rest) - HEAD, at)
  out[at + HEAD] = type
  out.writeUIntLE(lsn, at + HEAD + 1, 6)
  out[at + HEAD + 7] = nameLen
  let o = at + HEAD + 8 + out.write(table, at + HEAD + 8, 'latin1')
  for (const r of rest) { out.set(r, o); o += r.length }
  out.writeUInt32LE(crc32(out.subarray(at + HEAD, o)), at + 4)
  return o
}

/** Parses a segment's bytes; returns the records and the length of the valid prefix. */
export function parseSegment (buf: Buffer): { records: Array<WalRecord | (WalIntent & { type: 'intent' })>; valid: number } {
  const records: Array<WalRecord | (WalIntent & { type: 'intent' })> = []
  let o = 0
  while (o + HEAD <= buf.length) {
    const len = buf.readUInt32LE(o)
    if (len < 8 || o + HEAD + len > buf.length) break
    const body = buf.subarray(o + HEAD, o + HEAD + len)
    if (crc32(body) !== buf.readUInt32LE(o + 4)) break
    const type = body[0]
    const lsn = body.readUIntLE(1, 6)
    const nameLen = body[7]!
    const table = body.toString('latin1', 8, 8 + nameLen)
    const rest = body.subarray(8 + nameLen)
    if (type === DATA && rest.length >= 4) records.push({ lsn, table, rows: rest.readUInt32LE(0), chunk: Buffer.from(rest.subarray(4)) })
    else if (type === INTENT && rest.length === 12) records.push({ type: 'intent', lsn, table, first: rest.readUIntLE(0, 6), last: rest.readUIntLE(6, 6) })
    else break
    o += HEAD + len
  }
  return { records, valid: o }
}
