import { html } from 'htm/preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, alarmStream, call, get } from './api.js'
import { clock, t } from './i18n.js'
import { beep, beeps, muted, setMuted } from './sound.js'

const DAY = 86_400_000
const key = (a) => `${a.device}/${a.seq}`
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** The stored list with the alarms that arrived live and are not in storage yet (they are durable in the node's log, on their way). */
function merge (stored, live) {
  const have = new Set(stored.map(key))
  return [...live.values()].filter((a) => !have.has(key(a))).concat(stored).sort((a, b) => Number(b.at) - Number(a.at))
}

/**
 * Recent alarms of the tenant; new ones live from the alarm stream with a beep (unless muted) and a
 * visible alert, each acknowledged here. While the stream is down a banner says so; it reconnects
 * by itself and the node replays what arrived meanwhile (Last-Event-ID), so none is missed.
 */
export function Alarms ({ onError }) {
  const [list, setList] = useState(null)
  const [live, setLive] = useState(false)
  const [everLive, setEverLive] = useState(false)
  const [fresh, setFresh] = useState(new Set())
  const [busy, setBusy] = useState(new Set())
  const [quiet, setQuiet] = useState(muted())
  const [sounded, setSounded] = useState(0)
  const arrived = useRef(new Map())
  /** Alarms a live or replayed event said were past their expiry: the stored copy that replaces it does not know. */
  const staleKeys = useRef(new Set())
  const stored = useRef(null)
  /** Every alarm this board has shown, from its first read on; one it has not is new: marked and sounded, however it came (stream, replay, a later read). */
  const seen = useRef(null)

  const discover = (keys) => {
    const added = keys.filter((k) => !seen.current.has(k))
    if (added.length === 0) return
    for (const k of added) seen.current.add(k)
    setFresh((f) => { const n = new Set(f); for (const k of added) n.add(k); return n })
    void beep().then(() => setSounded(beeps()))
  }

  const reload = async () => {
    const rows = (await get(`/api/alarms?from=${Date.now() - DAY}`)).map((a) => ({ ...a, seq: String(a.seq) }))
    stored.current = rows
    for (const r of rows) arrived.current.delete(key(r))
    setList(merge(rows, arrived.current))
    if (seen.current === null) seen.current = new Set(rows.map(key))
    else discover(rows.filter((r) => !r.acknowledgedBy).map(key))
  }

  useEffect(() => {
    let wasDown = false
    // events that come before the first list is read wait for it: one already stored is not new
    const waiting = []
    const onAlarm = (a) => {
      if (seen.current === null) { waiting.push(a); return }
      const k = key(a)
      if (a.stale) staleKeys.current.add(k)
      if (!stored.current.some((s) => key(s) === k)) arrived.current.set(k, a)
      setList(merge(stored.current, arrived.current))
      discover([k])
    }
    reload().then(() => { for (const a of waiting.splice(0)) onAlarm(a) }, onError)
    const stop = alarmStream(onAlarm, (up) => {
      setLive(up)
      if (up) {
        setEverLive(true)
        // back after a drop: alarms and acknowledgements of the meantime are in storage
        if (wasDown) reload().catch(onError)
      }
      wasDown = !up
    })
    return stop
  }, [])

  useEffect(() => {
    document.title = fresh.size > 0 ? `(${fresh.size}) ${t('alarmBoard')}` : t('app')
    return () => { document.title = t('app') }
  }, [fresh.size])

  /** POST /api/alarms/ack; an alarm that arrived live may not be queryable yet (404) for a moment: retried a few times. */
  const acknowledge = async (a) => {
    for (let i = 0; ; i++) {
      try { return await call('POST', '/api/alarms/ack', { device: a.device, seq: a.seq }) } catch (err) {
        if (!(err instanceof ApiError && err.status === 404) || i >= 10) throw err
        await pause(300)
      }
    }
  }

  const ack = async (a) => {
    setBusy((b) => new Set(b).add(key(a)))
    try {
      await acknowledge(a)
      setFresh((f) => { const n = new Set(f); n.delete(key(a)); return n })
      await reload()
    } catch (err) { onError(err) } finally { setBusy((b) => { const n = new Set(b); n.delete(key(a)); return n }) }
  }

  const toggleMute = () => { setMuted(!quiet); setQuiet(!quiet) }

  return html`
    <main data-beeps=${sounded} data-connection=${live ? 'live' : 'down'}>
      <div class="title-row">
        <h1>${t('alarmBoard')} <span class=${live ? 'live on' : 'live'} data-live=${live}>${live ? t('live') : t('offline')}</span></h1>
        <button type="button" class="mute" aria-pressed=${quiet ? 'true' : 'false'} onClick=${toggleMute}>${quiet ? t('soundOff') : t('soundOn')}</button>
      </div>
      <div aria-live="assertive">
        ${!live && everLive ? html`<p class="disconnected" role="alert" data-disconnected="true">${t('disconnected')}</p>` : null}
        ${fresh.size > 0 ? html`
          <div class="alert" role="alert" data-new=${fresh.size}>
            <strong>${t('newAlarms', fresh.size)}</strong>
            <button type="button" onClick=${() => setFresh(new Set())}>${t('dismiss')}</button>
          </div>` : null}
      </div>
      ${list === null ? html`<p role="status">${t('loading')}</p>` : list.length === 0 ? html`<p>${t('noAlarms')}</p>` : html`
        <table class="alarms">
          <thead><tr><th scope="col">${t('time')}</th><th scope="col">${t('kind')}</th><th scope="col">${t('patient')}</th><th scope="col">${t('device')}</th><th scope="col">${t('status')}</th></tr></thead>
          <tbody>
            ${list.map((a) => html`
              <tr key=${key(a)} data-alarm=${key(a)} class=${fresh.has(key(a)) ? 'fresh' : a.acknowledgedBy ? 'acked' : 'open'}>
                <td>${clock(Number(a.at))}</td>
                <td>${t(a.kind)}${a.stale || staleKeys.current.has(key(a)) ? html` <span class="stale" data-stale="true">${t('stale')}</span>` : null}</td>
                <td>${a.patient || '–'}</td>
                <td>${a.device}</td>
                <td>${a.acknowledgedBy
                  ? html`<span data-acked-by=${a.acknowledgedBy}>${t('acknowledgedBy', a.acknowledgedBy)}</span>`
                  : html`<button type="button" class="ack" disabled=${busy.has(key(a))} onClick=${() => ack(a)}>${t('acknowledge')}</button>`}</td>
              </tr>`)}
          </tbody>
        </table>`}
    </main>`
}
