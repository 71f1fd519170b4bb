/**
 * GET /api/alarms/stream: Server-Sent Events, one `alarm` event per button press or fall, each with
 * `id:` = when the node took it in (ms). A reader that lost its connection reconnects with
 * `Last-Event-ID`; the stream first replays every alarm taken in since then — from ClickHouse, and
 * from the hub's last ten minutes for those durable in the log but not yet shipped — and then goes
 * on live, so an alarm published during the drop is not lost. Without the header the stream opens
 * with a `ready` event whose id is the node's clock, the cursor a reader resumes from after its
 * first drop, and replays the hub's last minute (alarms on their way into storage while the board
 * read its list). A reader keeps the alarms it has by device and seq, so one seen twice is one.
 */
import type { ServerResponse } from 'node:http'
import { alarmNoticeJson, type AlarmHub, type AlarmNotice } from './alarm-hub.ts'
import type { StoredAlarm } from './queries.ts'

/** Alarms taken in this long before the resume point are replayed too: a clock step, or an event written just after its id was read. */
const REPLAY_MARGIN_MS = 5_000
const FIRST_REPLAY_MS = 60_000
/** The oldest a replay reaches back: the board's own list covers the last day, so an older id replays from a day ago. */
const MAX_REPLAY_MS = 86_400_000
const PING_MS = 15_000

export interface AlarmStreamDeps {
  hub: AlarmHub
  /** Alarms stored (ingested) at or after a time. */
  storedSince: (tenant: string, sinceMs: number) => Promise<StoredAlarm[]>
  /** The replay's access-log rows: the patients whose alarms it read from storage. */
  audit: (patients: string[]) => Promise<void>
  /** Whether the reader's session still holds: once it ends (log-out, absolute limit) the stream ends before it writes anything more. */
  alive: () => boolean
}

/** A Last-Event-ID as this stream writes it (ms since the epoch), or null. */
export function parseLastEventId (h: string | string[] | undefined): number | null {
  const v = Array.isArray(h) ? h[0] : h
  return v !== undefined && /^[0-9]{1,15}$/.test(v) ? Number(v) : null
}

function noticeOf (tenant: string, a: StoredAlarm): AlarmNotice {
  return {
    tenant, device: a.device, seq: BigInt(a.seq), patient: a.patient === '' ? null : a.patient, kind: a.kind, occurredAtMs: a.occurredAtMs, ingestedAtMs: a.ingestedAtMs,
    location: a.latitude === null || a.longitude === null ? null : { latitude: a.latitude, longitude: a.longitude, accuracyM: a.accuracyM ?? 0 },
  }
}

/** Serves one stream on `res` (headers not yet written); returns when the replay is written; the stream ends when `closed` fires. */
export async function serveAlarmStream (deps: AlarmStreamDeps, tenant: string, lastEventId: number | null, res: ServerResponse, onClose: (f: () => void) => void): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
  res.write('retry: 2000\n: connected\n\n')
  let closed = false
  let stop = (): void => {}
  const end = (): void => { closed = true; stop(); clearInterval(ping) }
  const send = (text: string): void => {
    if (closed) return
    if (!deps.alive()) { end(); res.end(); return }
    res.write(text)
  }
  const write = (a: AlarmNotice): void => { send(`id: ${a.ingestedAtMs}\nevent: alarm\ndata: ${alarmNoticeJson(a)}\n\n`) }
  // live notices wait here while the replay is read, then go out after it (each once)
  let pending: AlarmNotice[] | null = []
  stop = deps.hub.subscribe(tenant, (a) => { if (pending === null) write(a); else pending.push(a) })
  const ping = setInterval(() => { send(': ping\n\n') }, PING_MS)
  onClose(end)

  const now = Date.now()
  const replay: AlarmNotice[] = []
  if (lastEventId === null) {
    send(`id: ${now}\nevent: ready\ndata: {}\n\n`)
    replay.push(...deps.hub.recent(tenant, now - FIRST_REPLAY_MS))
  } else {
    const since = Math.max(lastEventId - REPLAY_MARGIN_MS, now - MAX_REPLAY_MS)
    let stored: StoredAlarm[]
    try {
      stored = await deps.storedSince(tenant, since)
      await deps.audit([...new Set(stored.map((a) => a.patient).filter((p) => p !== ''))])
    } catch {
      // storage cannot answer: end the stream; the reader reconnects with the same Last-Event-ID and gets the replay then
      res.end()
      return
    }
    // the hub's copy of an alarm (with its expiry) ahead of storage's: the sort is stable, the first copy is the one written
    replay.push(...deps.hub.recent(tenant, since), ...stored.map((a) => noticeOf(tenant, a)))
  }
  if (closed) return
  const seen = new Set<string>()
  const once = (a: AlarmNotice): void => {
    const k = `${a.device}/${a.seq}`
    if (!seen.has(k)) { seen.add(k); write(a) }
  }
  replay.sort((a, b) => a.ingestedAtMs - b.ingestedAtMs)
  for (const a of replay) once(a)
  for (const a of pending) once(a)
  pending = null
  if (lastEventId !== null) send(`id: ${Math.max(now, ...replay.map((a) => a.ingestedAtMs))}\nevent: ready\ndata: {}\n\n`)
}
