/**
 * Restarts in ordinary operation: a node stopped and started with no traffic
 * in between, any number of times, still stores every message it
 * acknowledges afterwards. (The log's sequence numbers restarted at 1 after two
 * idle restarts while the checkpoint kept the old high: new batches looked
 * shipped already and their deduplication tokens collided, so 30 PUBACKed
 * messages were never stored.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestNode } from '../src/pipeline/index.ts'
import { createAlarmModel, DeviceSealer } from '../devices/index.ts'
import type { Enrollment } from '../src/registry/index.ts'
import { connectTls, publishAcked, rowsOf, startTestNode, tempDir } from './support/node.ts'

let dir: ReturnType<typeof tempDir>
let node: IngestNode | null = null
let enrollment: Enrollment
let sealer: DeviceSealer
const alarms = createAlarmModel(13)

async function publish (n: number): Promise<number[]> {
  const c = await connectTls(node!, 'cal-i1', enrollment.secret)
  const acked: number[] = []
  for (let i = 0; i < n; i++) {
    const { topic, frame, seq } = sealer.seal('alarm', alarms.next(Date.now() - 1000))
    if (await publishAcked(c, topic, frame)) acked.push(seq)
  }
  await c.endAsync(true)
  return acked
}

async function storedSeqs (): Promise<number[]> {
  const r = await rowsOf<{ s: string }>(node!, 'SELECT toString(seq) AS s FROM {db}.alarm_events WHERE device_id = {d:String}', { d: 'cal-i1' })
  return r.map((x) => Number(x.s)).sort((a, b) => a - b)
}

beforeAll(async () => {
  dir = tempDir('vf-restarts-')
  node = await startTestNode(dir.path)
  await node.registry.createTenant('care-i', 'I')
  enrollment = await node.registry.enrollDevice({ tenant: 'care-i', device: 'cal-i1', family: 'calarm', patient: null })
  sealer = new DeviceSealer({ tenant: 'care-i', device: 'cal-i1', keyId: enrollment.keyId, key: Buffer.from(enrollment.key, 'base64url') })
}, 60_000)
afterAll(async () => {
  await node?.close()
  dir?.remove()
})

describe('idle restarts', () => {
  it('stores every acknowledged message after any number of restarts without traffic', async () => {
    const acked = await publish(30)
    expect(acked).toHaveLength(30)
    // the probe's sequence: two idle cycles, then traffic again
    for (let idle = 0; idle < 2; idle++) {
      await node!.close()
      node = await startTestNode(dir.path)
    }
    acked.push(...await publish(30))
    expect(await storedSeqs()).toEqual([...acked].sort((a, b) => a - b))
    // and with traffic between some of the restarts
    for (let round = 0; round < 3; round++) {
      await node!.close()
      node = await startTestNode(dir.path)
      if (round !== 1) acked.push(...await publish(15))
    }
    expect(acked).toHaveLength(90)
    expect(await storedSeqs()).toEqual([...acked].sort((a, b) => a - b))
    // and read back from a fresh start, not only from the process that wrote them
    await node!.close()
    node = await startTestNode(dir.path)
    expect(await storedSeqs()).toEqual([...acked].sort((a, b) => a - b))
  }, 120_000)
})
