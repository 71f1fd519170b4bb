import { html } from 'htm/preact'
import { useEffect, useState } from 'preact/hooks'
import { alarmStream, call, get } from './api.js'
import { clock, t } from './i18n.js'

const DAY = 86_400_000
const key = (a) => `${a.device}/${a.seq}`

/** Recent alarms of the tenant, new ones live from the alarm stream with a visible alert, each acknowledged here. */
export function Alarms ({ onError }) {
  const [list, setList] = useState(null)
  const [live, setLive] = useState(false)
  const [fresh, setFresh] = useState(new Set())
  const [busy, setBusy] = useState(new Set())

  const reload = async () => {
    const rows = await get(`/api/alarms?from=${Date.now() - DAY}`)
    setList(rows.map((a) => ({ ...a, seq: String(a.seq) })))
  }

  useEffect(() => {
    reload().catch(onError)
    const stop = alarmStream((a) => {
      setList((l) => l === null || l.some((x) => key(x) === key(a)) ? l : [a, ...l])
      setFresh((f) => new Set(f).add(key(a)))
    }, setLive)
    return stop
  }, [])

  const ack = async (a) => {
    setBusy((b) => new Set(b).add(key(a)))
    try {
      await call('POST', '/api/alarms/ack', { device: a.device, seq: a.seq })
      setFresh((f) => { const n = new Set(f); n.delete(key(a)); return n })
      await reload()
    } catch (err) { onError(err) } finally { setBusy((b) => { const n = new Set(b); n.delete(key(a)); return n }) }
  }

  return html`
    <main>
      <h1>${t('alarmBoard')} <span class=${live ? 'live on' : 'live'} data-live=${live}>${live ? t('live') : t('offline')}</span></h1>
      <div aria-live="assertive">
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
                <td>${t(a.kind)}</td>
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
