/**
 * The replay windows of what the write-ahead logs hold, in one file beside them (embedded storage).
 *
 * A restart must not reopen a device's replay window (a recorded message sent again would be taken),
 * nor close it on a message that was never made durable (its resend would be refused). Until now each
 * accepted message's sequence number was a row of device_sequences: an insert, a part and a merge of
 * their own twice a second, a row per message kept forever, and all of it scanned at every start
 * (sequences.ts). Embedded, the store and the logs are on one disk, so the windows can live beside the
 * logs instead: the device_sequences batcher of each lane, whose rows are the sequence numbers that
 * lane's log holds, applies them to these windows and writes the file (to a temporary name, fsync'd,
 * renamed, the directory fsync'd) before the lane's checkpoint moves past them. What a crash leaves
 * beyond the checkpoint is in the log and applied again at start (accepting a number twice changes
 * nothing). The file holds, per device, its tenant, its id, the highest number and the 1,024 bits
 * below it; ~170 bytes a device, rewritten whole at most once per lane and batch age (twice a second).
 *
 * A server keeps device_sequences: there the store outlives the node's disk, and a new node's windows
 * come from it.
 *
 * Without the file (a first start, the first start of this version, a file lost or damaged), the
 * windows are seeded from what the store says: device_sequences where it holds rows (exact: the
 * versions before this one wrote it), and each device's head where that is higher (device_heads; the
 * window closed at the head, so a resend of a message older than the head is refused rather than a
 * replay taken). The seed is written at once; device_sequences is then emptied (it is not written
 * again and its rows are what made starts slow).
 */
import { createHash } from 'node:crypto'
import { open, readFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ReplayWindow } from '../crypto/index.ts'
import { StorageError } from './row-binary-insert.ts'
import { readSequenceRows } from './row-binary.ts'

const MAGIC = Buffer.from('vitalflow replay windows 1\n')
const DIGEST = 32

/** A device's window, and its tenant and id as the file writes them (encoded once, not at every write). */
interface Entry { name: Buffer; window: ReplayWindow }

function nameBytes (tenant: string, device: string): Buffer {
  const t = Buffer.from(tenant)
  const d = Buffer.from(device)
  const out = Buffer.allocUnsafe(4 + t.length + d.length)
  out.writeUInt16LE(t.length, 0)
  t.copy(out, 2)
  out.writeUInt16LE(d.length, 2 + t.length)
  d.copy(out, 4 + t.length)
  return out
}
const entry = (tenant: string, device: string, window: ReplayWindow): Entry => ({ name: nameBytes(tenant, device), window })

export class ReplayWindowFile {
  private readonly windows = new Map<string, Entry>()
  /** The write that takes the changes made from now on (null: none started since the last one began). */
  private next: Promise<void> | null = null
  private current: Promise<void> = Promise.resolve()

  private constructor (readonly path: string) {}

  /**
   * The windows as the file has them; null when there is no file, or when it is damaged (`onDamaged`
   * says why: the caller seeds the windows anew rather than trusting part of it).
   */
  static async load (path: string, onDamaged: (why: string) => void): Promise<ReplayWindowFile | null> {
    let bytes: Buffer
    try {
      bytes = await readFile(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    const file = new ReplayWindowFile(path)
    const why = file.parse(bytes)
    if (why === null) return file
    onDamaged(why)
    return null
  }

  /** New windows (from a seed), written to `path` before this resolves. */
  static async create (path: string, seed: Iterable<[device: string, tenant: string, window: ReplayWindow]>): Promise<ReplayWindowFile> {
    const file = new ReplayWindowFile(path)
    for (const [device, tenant, window] of seed) file.windows.set(device, entry(tenant, device, window))
    await file.persist()
    return file
  }

  /** Records every number these windows have seen in the devices' own (taking a window it has none for), and writes the file. */
  async merge (windows: Iterable<[device: string, tenant: string, window: ReplayWindow]>): Promise<void> {
    for (const [device, tenant, w] of windows) {
      const known = this.windows.get(device)
      if (known === undefined) this.windows.set(device, entry(tenant, device, w))
      else known.window.join(w)
    }
    await this.persist()
  }

  /** A copy of each device's window: what the ingest path starts from. */
  snapshot (): Map<string, ReplayWindow> {
    const out = new Map<string, ReplayWindow>()
    for (const [device, e] of this.windows) out.set(device, e.window.clone())
    return out
  }

  /**
   * Takes a batch of device_sequences rows (RowBinary: tenant, device, seq) and resolves once the file
   * holding them is durable: the device_sequences batcher's insert.
   */
  async insert (body: Buffer): Promise<void> {
    const whole = readSequenceRows(body, (tenant, device, seq) => {
      let e = this.windows.get(device)
      if (e === undefined) { e = entry(tenant, device, new ReplayWindow()); this.windows.set(device, e) }
      // the logged numbers were checked against the live window before they were logged; here they are only recorded
      e.window.accept(seq)
    })
    if (!whole) throw new StorageError('ING_ERR_STORAGE', 'a sequence row ends early')
    await this.persist()
  }

  /** Writes are serialised; every change made before a write starts is in it, and callers share the next one. */
  private persist (): Promise<void> {
    if (this.next !== null) return this.next
    const next = this.current.catch(() => {}).then(() => {
      this.next = null // what changes from now on waits for the write after this one
      return this.write(this.encode())
    })
    this.next = next
    this.current = next
    return next
  }

  private encode (): Buffer {
    let size = MAGIC.length + 4 + DIGEST
    let n = 0
    for (const e of this.windows.values()) {
      if (e.window.high < 0n) continue
      size += e.name.length + ReplayWindow.BYTES
      n++
    }
    const out = Buffer.allocUnsafe(size)
    let o = MAGIC.copy(out, 0)
    o = out.writeUInt32LE(n, o)
    for (const e of this.windows.values()) {
      if (e.window.high < 0n) continue
      o += e.name.copy(out, o)
      e.window.write(out, o)
      o += ReplayWindow.BYTES
    }
    createHash('sha256').update(out.subarray(0, o)).digest().copy(out, o)
    return out
  }

  /** null when `bytes` is a whole file; else what is wrong with it. */
  private parse (bytes: Buffer): string | null {
    if (bytes.length < MAGIC.length + 4 + DIGEST || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return 'not a replay-window file'
    const body = bytes.subarray(0, bytes.length - DIGEST)
    if (!createHash('sha256').update(body).digest().equals(bytes.subarray(body.length))) return 'its digest does not match'
    let o = MAGIC.length
    const n = body.readUInt32LE(o)
    o += 4
    for (let i = 0; i < n; i++) {
      if (o + 4 > body.length) return 'it ends early'
      const tl = body.readUInt16LE(o)
      const tenant = body.toString('utf8', o + 2, o + 2 + tl)
      o += 2 + tl
      const dl = body.readUInt16LE(o)
      const device = body.toString('utf8', o + 2, o + 2 + dl)
      o += 2 + dl
      if (o + ReplayWindow.BYTES > body.length) return 'it ends early'
      this.windows.set(device, entry(tenant, device, ReplayWindow.read(body, o)))
      o += ReplayWindow.BYTES
    }
    return o === body.length ? null : 'it has bytes after its last window'
  }

  private async write (bytes: Buffer): Promise<void> {
    const tmp = `${this.path}.tmp`
    const f = await open(tmp, 'w')
    try {
      await f.writeFile(bytes)
      await f.datasync()
    } finally {
      await f.close()
    }
    await rename(tmp, this.path)
    const dir = await open(dirname(this.path), 'r')
    try { await dir.sync() } finally { await dir.close() }
  }
}
