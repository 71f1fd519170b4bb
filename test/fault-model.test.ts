/**
 * The fault model (test/support/fault-model.ts) in the suite: fast-check
 * generates short sequences of operations — publish, idle restart, SIGTERM and
 * kill -9 under load, the log's or ClickHouse's disk filled then freed, the
 * node's clock jumping, a device clock days ahead — applies them to a node
 * running as a child process, and checks the stopped store against every
 * PUBACK. Bounded to a few sequences here; `npm run bench -- fault-soak` runs
 * the same generator for longer (figures in bench/RESULTS.md).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FaultWorld, newTally, opArbitrary, type Capabilities, type Op } from './support/fault-model.ts'
import { mountTmpfs } from './support/tmpfs.ts'

function capabilities (): Capabilities {
  const probe = mountTmpfs(1024 * 1024)
  const disks = 'path' in probe
  if ('path' in probe) probe.unmount()
  else process.stderr.write(`fault model: disk-full operations left out: ${probe.unavailable}\n`)
  return { disks }
}

const caps = capabilities()
const DEVICES = 8

async function runSequence (ops: Op[], tally: ReturnType<typeof newTally>): Promise<void> {
  const world = new FaultWorld(caps)
  try {
    await world.start()
    await world.enrol(DEVICES)
    // something acknowledged before the faults begin
    await world.apply({ op: 'publish', devices: DEVICES, messages: 5 })
    for (const o of ops) {
      await world.apply(o)
      tally.operations++
    }
    const r = await world.check(tally)
    expect(r.lost, `acknowledged but not stored after ${JSON.stringify(ops)}`).toEqual([])
    expect(r.duplicated, `stored more than once after ${JSON.stringify(ops)}`).toEqual([])
    expect(r.unsent, 'stored but never sent').toEqual([])
    // the checker is not vacuous: the sequence acknowledged messages, and they were read back
    expect(world.acked.size).toBeGreaterThan(0)
    expect(r.stored.size).toBeGreaterThan(0)
  } finally {
    await world.dispose()
  }
}

describe('fault model', () => {
  it('after any sequence of faults every acknowledged message is stored exactly once, and nothing unsent is', async () => {
    const tally = newTally()
    // the idle-restart defect and the full-disk crash are reached by the first seeds: keep them in every run
    const regressions: Op[][] = [
      [{ op: 'idle-restart' }, { op: 'idle-restart' }, { op: 'publish', devices: 4, messages: 30 }],
      [{ op: 'idle-restart' }, { op: 'kill9-under-load', afterMs: 800 }],
      ...(caps.disks ? [[{ op: 'log-disk-full', leaveBytes: 0, publishMs: 800 } as Op, { op: 'storage-disk-full', publishMs: 800 } as Op]] : []),
    ]
    for (const ops of regressions) await runSequence(ops, tally)
    await fc.assert(fc.asyncProperty(fc.array(opArbitrary(caps), { minLength: 2, maxLength: 5 }), async (ops) => {
      await runSequence(ops, tally)
    }), { numRuns: 3, endOnFailure: true })
    process.stderr.write(`fault model: ${JSON.stringify(tally)}\n`)
    expect(tally.lost + tally.duplicated + tally.unsent).toBe(0)
  }, 600_000)
})
