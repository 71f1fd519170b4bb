/**
 * The moving parts of a paged export: one ordered page stream per table (or
 * split value), read one page ahead, their merge order, and the sink that
 * gathers output into chunks and awaits the writable's backpressure.
 */
import type { Writable } from 'node:stream'
import { setImmediate as tick } from 'node:timers/promises'
import { ExportError } from './errors.ts'
import type { Out, Row } from './export-rows.ts'

/** Output goes to `out` in strings of about this many characters. */
const CHUNK = 64 * 1024

/** (ts, device, seq, idx) order across the page streams of one table; idx only ever decides between vital samples. */
export function before (a: Row, b: Row): boolean {
  if (a[0] !== b[0]) return (a[0] as string) < (b[0] as string)
  if (a[1] !== b[1]) return (a[1] as string) < (b[1] as string)
  const sa = a[2] as string
  const sb = b[2] as string
  if (sa !== sb) return sa.length !== sb.length ? sa.length < sb.length : sa < sb
  return (a[3] as number) < (b[3] as number)
}

/** One ordered page stream (a table, or one split value of it), one page ahead. */
export class Reader {
  rows: Row[] = []
  at = 0
  private next: Promise<Row[]> | null

  constructor (private readonly fetch: (after: Row | null) => Promise<Row[]>, private readonly limit: number) {
    this.next = this.prefetch(null)
  }

  /** A failed page surfaces where it is awaited; abandoned after an error elsewhere, it must not become an unhandled rejection. */
  private prefetch (after: Row | null): Promise<Row[]> {
    const p = this.fetch(after)
    p.catch(() => {})
    return p
  }

  /** Moves to the next page; false when the stream is over. */
  async advance (): Promise<boolean> {
    if (this.next === null) return false
    this.rows = await this.next
    this.at = 0
    const last = this.rows[this.rows.length - 1]
    this.next = this.rows.length === this.limit && last !== undefined ? this.prefetch(last) : null
    return this.rows.length > 0
  }
}

/** Gathers output into chunks and waits for `out` to drain; an error or close of `out` ends the export. */
export class Sink implements Out {
  private buf = ''
  private failed: Error | null = null
  private readonly onError = (err: Error): void => { this.failed ??= err }

  constructor (private readonly out: NodeJS.WritableStream | Writable) { out.on('error', this.onError) }

  push (s: string): void { this.buf += s }
  get full (): boolean { return this.buf.length >= CHUNK }

  async flush (): Promise<void> {
    const chunk = this.buf
    this.buf = ''
    const out = this.out as NodeJS.WritableStream & Partial<Writable>
    if (this.failed !== null) throw new ExportError('ING_ERR_OUTPUT', 'the output failed', { cause: this.failed })
    if (out.destroyed === true || out.writableEnded === true) throw new ExportError('ING_ERR_OUTPUT', 'the output was closed before the export ended')
    // yield even when `out` takes more: page queries are only dispatched from the event loop, and a long export must not starve the process
    if (chunk.length === 0 || out.write(chunk)) { await tick(); return }
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error): void => {
        out.off('drain', settle)
        out.off('close', closed)
        out.off('error', settle)
        if (err === undefined) resolve()
        else reject(new ExportError('ING_ERR_OUTPUT', 'the output failed', { cause: err }))
      }
      const closed = (): void => { settle(new Error('closed before the export ended')) }
      out.on('drain', settle)
      out.on('close', closed)
      out.on('error', settle)
    })
  }

  release (): void { this.out.off('error', this.onError) }
}
