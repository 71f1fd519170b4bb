/**
 * Alarms read ahead of telemetry while the node is busy (src/broker/read-scheduler.ts).
 *
 * The scheduler on its own, property-based, with a simulated clock and event loop (no wall-clock
 * times): every read runs exactly once, bulk reads first come first served, priority reads at once,
 * and no bulk read starts once a phase of the loop has used its slice, so the wait between two polls
 * of the sockets is bounded whatever the load. Then the packet guard on real TCP sockets: a bulk
 * connection whose data waits loses nothing, is not reordered and ends after its data, while a
 * priority connection is read meanwhile.
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import fc from 'fast-check'
import mqttPacket from 'mqtt-packet'
import { afterAll, describe, expect, it } from 'vitest'
import { GuardedConnection } from '../src/broker/packet-guard.ts'
import { createReadScheduler } from '../src/broker/read-scheduler.ts'

interface Arrival { priority: boolean; cost: number }

/**
 * One simulated run: turns of the event loop, each a poll phase (the arrivals) and a check phase (what the
 * scheduler put off). As in Node, the ticks queued by a callback run when it returns, before the next.
 * `inTick`: a read only hands its chunk over and the work runs in a tick it queues, as a connection's
 * stream does (the push; the parse and the pipeline follow in emitReadable_).
 */
function simulate (sliceMs: number, turns: Arrival[][], inTick = false): {
  ran: Array<{ id: number; priority: boolean; at: number; phase: string }>
  immediate: Map<number, boolean>
  phases: Array<{ name: string; bulkStarts: number[]; firstBulk: number | null; start: number }>
} {
  let clock = 0
  let immediates: Array<() => void> = []
  const ticks: Array<() => void> = []
  const drainTicks = (): void => { for (let f = ticks.shift(); f !== undefined; f = ticks.shift()) f() }
  const s = createReadScheduler({ sliceMs, now: () => clock, later: (f) => { immediates.push(f) }, soon: (f) => { ticks.push(f) } })
  const ran: Array<{ id: number; priority: boolean; at: number; phase: string }> = []
  const immediate = new Map<number, boolean>()
  const phases: Array<{ name: string; bulkStarts: number[]; firstBulk: number | null; start: number }> = []
  let phase = phases[0]
  let id = 0
  const begin = (name: string): void => { phase = { name, bulkStarts: [], firstBulk: null, start: clock }; phases.push(phase) }
  const runCheck = (): void => {
    begin('check')
    const now = immediates
    immediates = []
    for (const f of now) { f(); drainTicks() }
  }
  for (const turn of turns) {
    begin('poll')
    for (const a of turn) {
      const n = ++id
      const process = (): void => {
        ran.push({ id: n, priority: a.priority, at: clock, phase: phase!.name })
        if (!a.priority) { phase!.bulkStarts.push(clock); phase!.firstBulk ??= clock }
        clock += a.cost
      }
      const work = inTick ? () => { ticks.push(process) } : process
      immediate.set(n, s.run(work, a.priority))
      drainTicks()
      clock += 0.01 // reading the socket
    }
    runCheck()
  }
  for (let k = 0; immediates.length > 0 && k < 100_000; k++) runCheck()
  return { ran, immediate, phases }
}

const arrival = fc.record({ priority: fc.boolean(), cost: fc.double({ min: 0, max: 30, noNaN: true }) })

describe('read scheduler', () => {
  it('runs every read once, bulk reads in arrival order, priority reads at once, and no bulk read past a phase\'s slice, counting the work a read sets off', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 50 }), fc.array(fc.array(arrival, { maxLength: 40 }), { maxLength: 30 }), fc.boolean(), (sliceMs, turns, inTick) => {
      const { ran, immediate, phases } = simulate(sliceMs, turns, inTick)
      const all = turns.flat()
      expect(ran.map((r) => r.id).sort((a, b) => a - b)).toEqual(all.map((_, i) => i + 1))
      const bulk = ran.filter((r) => !r.priority).map((r) => r.id)
      expect(bulk).toEqual([...bulk].sort((a, b) => a - b))
      for (const [i, a] of all.entries()) if (a.priority) expect(immediate.get(i + 1)).toBe(true)
      for (const p of phases) {
        if (p.firstBulk === null) continue
        // a check phase's slice starts with the phase; a poll phase's with its first bulk read, or
        // with the check phase before it if that one spent its slice (then no bulk read runs in it)
        const from = p.name === 'check' ? p.start : p.firstBulk
        for (const at of p.bulkStarts) expect(at - from).toBeLessThan(sliceMs)
      }
    }), {
      numRuns: 300,
      // a case random runs find only sometimes: the reads hand over in ticks, and a second read of a check
      // phase starts once the first's parse spent the slice unless the clock is read after that parse
      examples: [[1, [[{ priority: false, cost: 0.99 }, { priority: false, cost: 1 }, { priority: false, cost: 0 }]], true]],
    })
  })

  it('puts nothing off while the load fits in a slice, and everything runs at once with slices off', () => {
    const light = simulate(20, Array.from({ length: 10 }, () => [{ priority: false, cost: 1 }, { priority: false, cost: 2 }]), true)
    expect([...light.immediate.values()].every(Boolean)).toBe(true)
    const off = createReadScheduler({ sliceMs: 0, now: () => 0, later: () => { throw new Error('never scheduled') } })
    const got: number[] = []
    for (let i = 0; i < 5; i++) expect(off.run(() => { got.push(i) }, false)).toBe(true)
    expect(got).toEqual([0, 1, 2, 3, 4])
    expect(off.deferred).toBe(0)
  })
})

// ── the packet guard on real sockets ─────────────────────────────────────────

const servers: Server[] = []
afterAll(() => { for (const s of servers) s.close() })

async function pair (): Promise<{ client: Socket; server: Socket }> {
  const accepted = new Promise<Socket>((resolve) => {
    const srv = createServer(resolve)
    servers.push(srv)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo
      client = createConnection(port, '127.0.0.1')
    })
  })
  let client!: Socket
  const server = await accepted
  return { client, server }
}

const frame = (p: object): Buffer => mqttPacket.generate(p as mqttPacket.Packet)

describe('packet guard with a read scheduler', () => {
  it('holds a busy bulk connection\'s data without losing or reordering it, ends it after its data, and reads a priority connection meanwhile', async () => {
    // a clock that moves a second per reading: every bulk read after a turn's first is put off; and the
    // turns that take up what was put off run only when the test says (as setImmediate would, later)
    let t = 0
    let turns: Array<() => void> = []
    const reads = createReadScheduler({ sliceMs: 1, now: () => (t += 1000), later: (f) => { turns.push(f) } })
    const runTurn = (): void => { const now = turns; turns = []; for (const f of now) f() }
    const limits = { maxPacketBytes: 1 << 20, maxConnectBytes: 4096 }
    const bulk = await pair()
    const prio = await pair()
    const gBulk = new GuardedConnection(bulk.server, limits, () => {}, undefined, reads)
    const gPrio = new GuardedConnection(prio.server, limits, () => {}, undefined, reads)
    gPrio.priority = true
    const order: string[] = []
    const received = (g: GuardedConnection, name: string): Promise<Buffer> => new Promise((resolve) => {
      const got: Buffer[] = []
      g.on('data', (b: Buffer) => { got.push(b); order.push(name) })
      g.on('end', () => { order.push(`${name}:end`); resolve(Buffer.concat(got)) })
    })
    const bulkDone = received(gBulk, 'bulk')
    const prioDone = received(gPrio, 'prio')
    const connect = frame({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'x', clean: true, keepalive: 30 })
    const publishes = Array.from({ length: 400 }, (_, i) => frame({ cmd: 'publish', topic: 'v1/t/d/vitals', payload: Buffer.from(`message ${i}`), qos: 1, messageId: i + 1, dup: false, retain: false }))
    const sent = Buffer.concat([connect, ...publishes])
    // in pieces, with pauses, so that the receiving side reads several times
    for (let at = 0; at < sent.length; at += 1000) {
      bulk.client.write(sent.subarray(at, at + 1000))
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    bulk.client.end()
    // the first read goes through; the next waits (its socket paused) for a turn the test has not run
    while (reads.waiting === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    prio.client.end(Buffer.concat([connect, frame({ cmd: 'publish', topic: 'v1/t/a/alarm', payload: Buffer.from('fall'), qos: 1, messageId: 1, dup: false, retain: false })]))
    const gotPrio = await prioDone
    expect(gotPrio.toString('latin1')).toContain('fall')
    expect(order).not.toContain('bulk:end')
    expect(reads.waiting).toBeGreaterThan(0)
    // now the turns: the bulk connection's data, all of it, in order, and then its end
    while (!order.includes('bulk:end')) { runTurn(); await new Promise((resolve) => setTimeout(resolve, 1)) }
    const gotBulk = await bulkDone
    expect(gotBulk.equals(sent)).toBe(true)
    expect(order.lastIndexOf('bulk')).toBeLessThan(order.indexOf('bulk:end'))
    expect(reads.waiting).toBe(0)
    expect(reads.deferred).toBeGreaterThan(0)
  })

  it('counts the parse a stream read sets off in the slice: a turn takes up only the waiting chunks that fit', async () => {
    // the consumer reads as aedes does ('readable', then read()), so a chunk handed over is parsed in a
    // tick of its own; each parse moves the clock 10 ms, the slice is 15 ms
    let t = 0
    let turns: Array<() => void> = []
    const reads = createReadScheduler({ sliceMs: 15, now: () => t, later: (f) => { turns.push(f) } })
    const limits = { maxPacketBytes: 1 << 20, maxConnectBytes: 4096 }
    const conns = await Promise.all(Array.from({ length: 6 }, async () => pair()))
    let parsed = 0
    const guards = conns.map((c) => {
      const g = new GuardedConnection(c.server, limits, () => {}, undefined, reads)
      g.on('readable', () => { while (g.read() !== null) { parsed++; t += 10 } })
      return g
    })
    const connect = frame({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'x', clean: true, keepalive: 30 })
    // each connection's chunk arrives after the first parse spent the slice: all but the first wait
    for (const c of conns) c.client.write(connect)
    while (parsed + reads.waiting < conns.length) await new Promise((resolve) => setTimeout(resolve, 5))
    const waiting = reads.waiting
    expect(waiting).toBeGreaterThanOrEqual(2)
    const perTurn: number[] = []
    while (reads.waiting > 0 || turns.length > 0) {
      const before = parsed
      const now = turns
      turns = []
      for (const f of now) f()
      // the turn's ticks, then whatever they set off
      await new Promise((resolve) => setImmediate(resolve))
      perTurn.push(parsed - before)
    }
    // two parses a turn (the first always runs; 10 ms < 15 ms lets one more in), never all at once
    expect(perTurn.filter((n) => n > 0).every((n) => n <= 2)).toBe(true)
    expect(parsed).toBe(conns.length)
    for (const g of guards) g.destroy()
    for (const c of conns) c.client.destroy()
  })
})
