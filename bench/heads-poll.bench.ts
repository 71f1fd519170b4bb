/**
 * What a poll of GET /admin/tenants/:t/sequences costs the node (the simulator's "device → queryable"
 * observer polls each tenant about five times a second): the whole tenant each time, against following
 * the `storedSince` cursor the node hands out (x-vitalflow-stored-since), which answers only the heads
 * stored since. A tenant of `devices` heads, and heads for `perPart` of them stored every 250 ms while
 * the polls run, as the node writes them under load. The polls come from a child process; this
 * process's CPU (the node: HTTP, the route, and chDB where it reads) is read per poll. The two ways take
 * turns, a round each. An embedded node answers from its record of the heads it inserted
 * (src/storage/stored-heads.ts); the baseline in the same run is the read of device_heads it made before
 * (and a server still makes), called in this process on the requests connection, against the same
 * record called the same way: `fromTable` and `fromMemory`, whole and following the cursor.
 * Usage: npx tsx bench/heads-poll.bench.ts [devices=2000] [perPart=60] [polls=60]
 */
import { execFile } from 'node:child_process'
import { startNode } from '../src/pipeline/index.ts'
import { sequenceRow, storedHeadsSince } from '../src/storage/index.ts'
import { testConfig, tempDir } from '../test/support/node.ts'
import { machine } from './harness.ts'

const devices = Number(process.argv[2] ?? 2000)
const perPart = Number(process.argv[3] ?? 60)
const polls = Number(process.argv[4] ?? 60)
const T = 'bench-heads'

const dir = tempDir('vf-heads-poll-')
const node = await startNode(testConfig(dir.path))
await node.registry.createTenant(T, T)
const seqs = new Map<number, bigint>()
const store = async (ids: number[]): Promise<void> => {
  for (const i of ids) {
    const seq = (seqs.get(i) ?? 1_000n) + 1n
    seqs.set(i, seq)
    void node.storage.write('device_heads', sequenceRow(T, `brc-${i}`, seq), 1)
  }
  await node.storage.flush()
}
await store(Array.from({ length: devices }, (_, i) => i))
// heads keep arriving while the polls run: a part every 250 ms with `perPart` devices' new heads
let writing = true
const writer = (async () => {
  let k = 0
  while (writing) {
    await store(Array.from({ length: perPart }, () => (k++ * 7919) % devices))
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
})()

const poller = `
const [base, token, tenant, mode, n] = process.argv.slice(1)
let cursor; let rows = 0
const t0 = Date.now()
for (let i = 0; i < Number(n); i++) {
  const q = mode === 'cursor' && cursor !== undefined ? '&storedSince=' + cursor : ''
  const res = await fetch(base + '/admin/tenants/' + tenant + '/sequences?since=0' + q, { headers: { authorization: 'Bearer ' + token } })
  rows += (await res.json()).length
  cursor = res.headers.get('x-vitalflow-stored-since') ?? cursor
}
process.stdout.write(JSON.stringify({ rows, seconds: (Date.now() - t0) / 1000 }))`
async function round (mode: 'whole' | 'cursor'): Promise<{ cpuMs: number; rows: number }> {
  const u0 = process.cpuUsage()
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', poller, `http://127.0.0.1:${node.http.port}`, node.adminToken, T, mode, String(polls)], (err, stdout) => {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- ExecFileException is an Error; @types/node declares it through an Omit<> the rule does not see through
      if (err !== null) reject(err)
      else resolve(stdout)
    })
  })
  const u = process.cpuUsage(u0)
  return { cpuMs: (u.user + u.system) / 1000, rows: (JSON.parse(out) as { rows: number }).rows }
}

const totals = { whole: { cpuMs: 0, rows: 0, polls: 0 }, cursor: { cpuMs: 0, rows: 0, polls: 0 } }
// the writer's own CPU (a part every 250 ms) is in both; measured alone it is subtracted
const idle = async (): Promise<number> => {
  const u0 = process.cpuUsage()
  await new Promise((resolve) => setTimeout(resolve, 3000))
  const u = process.cpuUsage(u0)
  return (u.user + u.system) / 1000 / 3000
}
const background = await idle()
for (let r = 0; r < 3; r++) {
  for (const mode of ['whole', 'cursor'] as const) {
    const t0 = performance.now()
    const x = await round(mode)
    const ms = performance.now() - t0
    totals[mode].cpuMs += x.cpuMs - background * ms
    totals[mode].rows += x.rows
    totals[mode].polls += polls
  }
}
// the route's work called directly (no HTTP), the table's read against the record, taking turns
const requestSide = { ...node.storage, conn: node.storage.conn.requests }
const ways = { fromTable: { ...requestSide, heads: null }, fromMemory: requestSide }
const direct: Record<string, { cpuMs: number; rows: number; polls: number }> = {}
for (let r = 0; r < 3; r++) {
  for (const [name, storage] of Object.entries(ways)) {
    for (const mode of ['whole', 'cursor'] as const) {
      const k = `${name}.${mode}`
      const acc = direct[k] ??= { cpuMs: 0, rows: 0, polls: 0 }
      let next: number | undefined
      const t0 = performance.now()
      const u0 = process.cpuUsage()
      for (let i = 0; i < polls; i++) {
        const a = await storedHeadsSince(storage, T, 0, mode === 'cursor' ? next : undefined)
        next = a.next
        acc.rows += a.heads.length
      }
      const u = process.cpuUsage(u0)
      acc.cpuMs += (u.user + u.system) / 1000 - background * (performance.now() - t0)
      acc.polls += polls
    }
  }
}
const perDirect = (k: string): { cpuMsPerPoll: number; rowsPerPoll: number } => ({
  cpuMsPerPoll: Math.round(direct[k]!.cpuMs / direct[k]!.polls * 100) / 100, rowsPerPoll: Math.round(direct[k]!.rows / direct[k]!.polls),
})
writing = false
await writer
const per = (m: keyof typeof totals): { cpuMsPerPoll: number; rowsPerPoll: number } => ({
  cpuMsPerPoll: Math.round(totals[m].cpuMs / totals[m].polls * 10) / 10, rowsPerPoll: Math.round(totals[m].rows / totals[m].polls),
})
const whole = per('whole')
const cursor = per('cursor')
process.stdout.write(JSON.stringify({
  benchmark: 'heads-poll', machine: machine(), devices, headsPerPart: perPart, pollsPerRound: polls, rounds: 3,
  backgroundCpuMsPerSecond: Math.round(background * 1000 * 10) / 10,
  overHttp: { wholeTenant: whole, followingCursor: cursor, cpuRatio: Math.round(cursor.cpuMsPerPoll / whole.cpuMsPerPoll * 100) / 100 },
  routeAlone: {
    fromTable: { wholeTenant: perDirect('fromTable.whole'), followingCursor: perDirect('fromTable.cursor') },
    fromMemory: { wholeTenant: perDirect('fromMemory.whole'), followingCursor: perDirect('fromMemory.cursor') },
  },
}, null, 2) + '\n')
await node.close()
dir.remove()
