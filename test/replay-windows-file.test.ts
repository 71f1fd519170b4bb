/**
 * The replay-window file (src/storage/replay-windows.ts): what the device_sequences batcher hands it
 * (RowBinary sequence rows) comes back after a load exactly as a live window holding the same numbers
 * has it; a damaged file is refused, not read in part; a write is durable before insert() resolves
 * (the file is there, whole, after it). Real files in a temp dir.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { ReplayWindow, WINDOW_SIZE } from '../src/crypto/index.ts'
import { ReplayWindowFile, sequenceRow } from '../src/storage/index.ts'
import { tempDir } from './support/node.ts'

const dirs: Array<ReturnType<typeof tempDir>> = []
afterEach(() => { for (const d of dirs.splice(0)) d.remove() })
const pathIn = (): string => { const d = tempDir('vf-windows-'); dirs.push(d); return join(d.path, 'replay-windows') }
const rows = (items: Array<[string, string, bigint]>): Buffer => Buffer.concat(items.map(([t, d, s]) => sequenceRow(t, d, s)))
const noDamage = (why: string): void => { throw new Error(`unexpected damage: ${why}`) }

describe('replay-window file', () => {
  it('loads what it was given as the live windows have it, over the whole uint64 range and across devices', async () => {
    const seq = fc.oneof(fc.bigInt({ min: 0n, max: 5000n }), fc.bigInt({ min: 0xffff_ffff_ffff_f000n, max: 0xffff_ffff_ffff_ffffn }))
    const batch = fc.array(fc.tuple(fc.constantFrom('dev-a', 'dev-b', 'dëv-ç'), seq), { maxLength: 60 })
    await fc.assert(fc.asyncProperty(fc.array(batch, { minLength: 1, maxLength: 6 }), async (batches) => {
      const path = pathIn()
      const file = await ReplayWindowFile.create(path, [])
      const live = new Map<string, ReplayWindow>()
      for (const b of batches) {
        const accepted: Array<[string, string, bigint]> = []
        for (const [device, s] of b) {
          const w = live.get(device) ?? new ReplayWindow()
          live.set(device, w)
          if (!w.check(s)) continue // the ingest path logs only what its live window took
          w.accept(s)
          accepted.push([`t-${device}`, device, s])
        }
        await file.insert(rows(accepted))
      }
      const loaded = (await ReplayWindowFile.load(path, noDamage))!.snapshot()
      for (const [device, w] of live) {
        if (w.high < 0n) { expect(loaded.has(device)).toBe(false); continue }
        const l = loaded.get(device)!
        expect(l.high).toBe(w.high)
        for (let back = 0n; back <= BigInt(WINDOW_SIZE) + 2n && back <= w.high; back++) expect(l.check(w.high - back)).toBe(w.check(w.high - back))
        if (w.high < 0xffff_ffff_ffff_ffffn) expect(l.check(w.high + 1n)).toBe(true)
      }
      dirs.splice(0).forEach((d) => { d.remove() })
    }), { numRuns: 60 })
  })

  it('writes once per change and is whole on disk when insert resolves; concurrent inserts share a write and all are in it', async () => {
    const path = pathIn()
    const file = await ReplayWindowFile.create(path, [])
    await Promise.all([
      file.insert(rows([['t', 'a', 1n], ['t', 'a', 3n]])),
      file.insert(rows([['t', 'b', 7n]])),
      file.insert(rows([['t', 'a', 2n]])),
    ])
    const again = (await ReplayWindowFile.load(path, noDamage))!.snapshot()
    expect([1n, 2n, 3n].map((s) => again.get('a')!.check(s))).toEqual([false, false, false])
    expect(again.get('a')!.check(4n)).toBe(true)
    expect(again.get('b')!.check(7n)).toBe(false)
    expect(again.get('b')!.check(6n)).toBe(true)
  })

  it('refuses a damaged or foreign file as a whole and says why; a missing one is no file', async () => {
    const path = pathIn()
    expect(await ReplayWindowFile.load(path, noDamage)).toBeNull()
    const file = await ReplayWindowFile.create(path, [['dev', 't', ReplayWindow.closedAt(40n)]])
    await file.insert(rows([['t', 'dev', 41n]]))
    const good = readFileSync(path)
    const cases: Array<[string, Buffer]> = [
      ['a flipped bit', Buffer.from(good.map((b, i) => i === good.length - 40 ? b ^ 1 : b))],
      ['cut short', good.subarray(0, good.length - 10)],
      ['another file', Buffer.from('{"not":"windows"}')],
    ]
    for (const [name, bytes] of cases) {
      writeFileSync(path, bytes)
      const why: string[] = []
      expect(await ReplayWindowFile.load(path, (w) => { why.push(w) }), name).toBeNull()
      expect(why, name).toHaveLength(1)
    }
  })

  it('a window closed at a head counts everything at or below it as seen; joining windows keeps what either saw', () => {
    const closed = ReplayWindow.closedAt(5000n)
    expect([5000n, 4999n, 4000n, 3977n].map((s) => closed.check(s))).toEqual([false, false, false, false])
    expect(closed.check(5001n)).toBe(true)
    const a = new ReplayWindow()
    for (const s of [10n, 12n]) a.accept(s)
    const b = new ReplayWindow()
    for (const s of [11n, 2000n]) b.accept(s)
    a.join(b)
    expect(a.high).toBe(2000n)
    expect(a.check(11n)).toBe(false) // 1989 below 2000: out of the window, refused as too old
    const c = new ReplayWindow()
    for (const s of [10n, 12n]) c.accept(s)
    const d = new ReplayWindow()
    for (const s of [11n, 14n]) d.accept(s)
    c.join(d)
    expect([10n, 11n, 12n, 14n].map((s) => c.check(s))).toEqual([false, false, false, false])
    expect(c.check(13n)).toBe(true)
  })
})
