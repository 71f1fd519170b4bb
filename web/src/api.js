// The one door to the node: /api with a bearer token. The token is held in this module's memory
// only, never in localStorage, sessionStorage or a cookie: a script injected later could not read
// it from storage, a shared ward tablet keeps nothing after the tab closes, and a reload asks for
// a log-in again (the price). A 401 on any call means the session ended (idle or absolute limit):
// the app forgets the token and shows the log-in, then returns to the page the user was on.
let session = null
let onExpired = () => {}

/** @param {() => void} f called when the node answers 401 to a logged-in call */
export function whenExpired (f) { onExpired = f }
export function loggedIn () { return session !== null }
export function tenant () { return session?.tenant ?? '' }
/** The account's role, as the log-in answered it: which screens to offer (the API checks every call itself). */
export function role () { return session?.role ?? '' }

export class ApiError extends Error {
  constructor (status, body, retryAfter) {
    super(body?.message ?? `HTTP ${status}`)
    this.status = status
    this.code = body?.error ?? 'ING_ERR_HTTP'
    this.retryAfter = retryAfter
  }
}

async function answer (r) {
  const text = await r.text()
  let body = null
  try { body = text === '' ? null : JSON.parse(text) } catch { body = null }
  if (!r.ok) throw new ApiError(r.status, body, Number(r.headers.get('retry-after') ?? 0))
  return body
}

/** POST /api/login; throws ApiError with the API's code (ING_ERR_AUTH, ING_ERR_LOCKED, ING_ERR_AUTH_BACKOFF, ...). */
export async function logIn (tenantId, user, password) {
  const r = await fetch('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: tenantId, user, password }) })
  const body = await answer(r)
  session = { token: body.token, tenant: tenantId, user, role: body.role }
  return session
}

export async function logOut () {
  const s = session
  session = null
  if (s !== null) await fetch('/api/logout', { method: 'POST', headers: { authorization: `Bearer ${s.token}` } }).catch(() => {})
}

function headers (extra = {}) {
  return { ...extra, authorization: `Bearer ${session?.token ?? ''}` }
}

function expired () { session = null; onExpired() }

/** A call with the session's token; a 401 ends the session. */
export async function call (method, path, body) {
  const r = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (r.status === 401 && session !== null) expired()
  return await answer(r)
}

export const get = (path) => call('GET', path)

/**
 * The tenant's alarms as they arrive (GET /api/alarms/stream, Server-Sent Events). EventSource
 * cannot send a bearer token, so the stream is read with fetch, and resumed the way EventSource
 * would: every event's `id:` is kept and sent back as `Last-Event-ID` on reconnect, and the node
 * replays from storage what was taken in since, so an alarm during a drop is shown once it is back.
 * Reconnects by itself (1 s, doubling to 10 s; at once when the browser is online again); a stream
 * silent for longer than three of the node's 15 s pings counts as dropped. `seq` is a uint64 and is
 * kept as the decimal text, never rounded through a JavaScript number. onState(true | false) tells
 * whether the stream is up. Returns a function that stops it.
 */
export function alarmStream (onAlarm, onState) {
  const stop = new AbortController()
  let lastId = null
  let retry
  let attempt = 0
  let current = null
  const run = async () => {
    clearTimeout(retry)
    const conn = new AbortController()
    current = conn
    const abort = () => conn.abort()
    stop.signal.addEventListener('abort', abort)
    let watchdog
    const alive = () => { clearTimeout(watchdog); watchdog = setTimeout(abort, 45_000) }
    try {
      const h = lastId === null ? headers() : headers({ 'last-event-id': lastId })
      const r = await fetch('/api/alarms/stream', { headers: h, signal: conn.signal, cache: 'no-store' })
      if (r.status === 401) { expired(); return }
      if (!r.ok || r.body === null) throw new Error(`HTTP ${r.status}`)
      alive()
      attempt = 0
      onState(true)
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader()
      let buf = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        alive()
        buf += value
        let end
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end)
          buf = buf.slice(end + 2)
          const id = /^id: (\d+)$/m.exec(block)?.[1]
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n')
          if (/^event: alarm$/m.test(block) && data !== '') {
            const seq = /^\{"seq":(\d+)/.exec(data)?.[1]
            const a = JSON.parse(data)
            onAlarm({ at: a.occurredAtMs, device: a.device, seq: seq ?? String(a.seq), patient: a.patient ?? '', kind: a.kind, acknowledgedBy: '', ingestedAt: a.ingestedAtMs, stale: a.stale === true })
          }
          if (id !== undefined) lastId = id // after the event is handled: a drop mid-event replays it
        }
      }
    } catch {
      // dropped, refused or offline: reconnect below
    } finally {
      clearTimeout(watchdog)
      stop.signal.removeEventListener('abort', abort)
    }
    if (stop.signal.aborted || session === null || current !== conn) return
    onState(false)
    retry = setTimeout(run, Math.min(10_000, 1000 * 2 ** attempt++))
  }
  const online = () => { if (!stop.signal.aborted) { current?.abort(); void run() } }
  window.addEventListener('online', online)
  void run()
  return () => { stop.abort(); clearTimeout(retry); window.removeEventListener('online', online) }
}

/**
 * A file from the API (an export, for instance), read with the session's token in the
 * Authorization header: the browser never navigates to it, so no token or id lands in a URL
 * beyond the API path itself. Answers the body as a Blob and the name the node suggested.
 */
export async function download (path) {
  const r = await fetch(path, { headers: headers() })
  if (r.status === 401 && session !== null) expired()
  if (!r.ok) await answer(r)
  const name = /filename="([^"]+)"/.exec(r.headers.get('content-disposition') ?? '')?.[1] ?? 'download'
  return { blob: await r.blob(), name }
}
