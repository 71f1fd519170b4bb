/**
 * The fault model's generator for longer than the suite runs it: random
 * sequences of faults against a child-process node until the time is up,
 * each checked against the stopped store. Prints one JSON document: sequences
 * and operations run (by kind), messages sent and acknowledged, lost,
 * duplicated, stored without being sent, and every failing sequence.
 *
 *   npm run soak:faults -- --minutes 10 [--seed 42]
 *
 * Disk operations need root (tmpfs mounts).
 */
import { parseArgs } from 'node:util'
import fc from 'fast-check'
import { FaultWorld, newTally, opArbitrary, type Op } from '../test/support/fault-model.ts'
import { mountTmpfs } from '../test/support/tmpfs.ts'

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, seed: { type: 'string' }, devices: { type: 'string', default: '8' } } })
const minutes = Number(values.minutes)
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed)
const probe = mountTmpfs(1024 * 1024)
const caps = { disks: 'path' in probe }
if ('path' in probe) probe.unmount()

const tally = newTally()
const byOp: Record<string, number> = {}
const failures: Array<{ ops: Op[]; error: string }> = []
const started = Date.now()
const gen = fc.array(opArbitrary(caps), { minLength: 3, maxLength: 8 })
let i = 0
while (Date.now() - started < minutes * 60_000) {
  const [ops] = fc.sample(gen, { numRuns: 1, seed: seed + i++ })
  const world = new FaultWorld(caps)
  try {
    await world.start()
    await world.enrol(Number(values.devices))
    await world.apply({ op: 'publish', devices: Number(values.devices), messages: 5 })
    for (const o of ops!) {
      await world.apply(o)
      tally.operations++
      byOp[o.op] = (byOp[o.op] ?? 0) + 1
    }
    const r = await world.check(tally)
    if (r.lost.length + r.duplicated.length + r.unsent.length > 0) failures.push({ ops: ops!, error: JSON.stringify({ lost: r.lost.slice(0, 20), duplicated: r.duplicated.slice(0, 20), unsent: r.unsent.slice(0, 20) }) })
  } catch (err) {
    failures.push({ ops: ops!, error: String((err as Error).message).slice(-3000) })
  } finally {
    await world.dispose()
  }
  if (failures.length > 0 && failures.at(-1)!.ops === ops) process.stderr.write(`fault soak: FAILED ${JSON.stringify(failures.at(-1))}\n`)
  // the report so far, after every sequence: a soak cut short still leaves its figures
  process.stderr.write(`fault soak progress: ${JSON.stringify({ elapsedS: Math.round((Date.now() - started) / 1000), ...tally, operationsByKind: byOp, failing: failures.length })}\n`)
  process.stderr.write(`fault soak: ${tally.sequences} sequences, ${tally.acknowledged} acknowledged, ${tally.lost} lost, ${tally.duplicated} duplicated, ${failures.length} failing\n`)
}
process.stdout.write(JSON.stringify({
  bench: 'fault-soak', seed, minutes, capabilities: caps, elapsedS: Math.round((Date.now() - started) / 1000), ...tally, operationsByKind: byOp, failures,
}, null, 2) + '\n')
process.exit(failures.length === 0 ? 0 : 1)
