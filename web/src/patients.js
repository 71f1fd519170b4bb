import { html } from 'htm/preact'
import { useEffect, useMemo, useState } from 'preact/hooks'
import { get, tenant } from './api.js'
import { age, t } from './i18n.js'
import { names } from './names.js'

export const LIST_METRICS = ['heart_rate', 'spo2', 'respiration_rate', 'skin_temperature']
const HOUR = 3_600_000
/**
 * The list reads GET /api/patients/overview (one query for every patient) when opened, every
 * POLL_MS while the tab is visible, and on Refresh. Polling, not a push: each read is a row per
 * patient in the access log (NEN 7513), so a hidden tab does not read at all.
 */
const POLL_MS = 30_000
/** Rows drawn in the first frame (more than a screenful); the rest follow in the next task, so a list of 1,000 shows at once. */
const FIRST_ROWS = 100

/**
 * performance.mark once (until the marks are cleared), in the frame after the render: what
 * bench/web.bench.ts reads (vf:list-shown, vf:patient-shown = first meaningful paint, vf:charts-ready).
 */
export function markOnce (name) {
  if (performance.getEntriesByName(name, 'mark').length === 0) requestAnimationFrame(() => performance.mark(name))
}

/** A stored value with its unit, rounded for reading. */
export function shown (metric, value) {
  return `${Number(value.toFixed(metric === 'skin_temperature' ? 1 : 0))} ${t(`unit_${metric}`)}`
}

/** The newest time anything was heard of a patient: a vital or a device (ms, or null). */
const lastHeard = (r) => Math.max(-1, ...Object.values(r.vitals).map((v) => v.at), ...r.devices.map((d) => d.lastSeenAt ?? -1))
const lowestBattery = (r) => Math.min(Infinity, ...r.devices.map((d) => d.battery ?? Infinity))

/** The list's filters: each a test of a row at a time `now`. */
export const FILTERS = {
  all: () => true,
  lowSpo2: (r, now) => r.vitals.spo2 !== undefined && r.vitals.spo2.value < 92 && now - r.vitals.spo2.at <= HOUR,
  // measurements by their own time: a device that just sent a backlog of old data was heard, but has no new data
  silent6h: (r, now) => { const v = Math.max(-1, ...Object.values(r.vitals).map((x) => x.at)); return v < 0 || now - v > 6 * HOUR },
  openAlarms: (r) => r.openAlarms > 0,
  lowBattery: (r) => lowestBattery(r) < 20,
}

export function Patients ({ onError }) {
  const [rows, setRows] = useState(null)
  const [filter, setFilter] = useState('')
  const [which, setWhich] = useState('all')
  const [sort, setSort] = useState({ key: 'patient', dir: 1 })
  const [now, setNow] = useState(Date.now())
  const [readAt, setReadAt] = useState(null)
  const local = names(tenant())

  const load = () => get('/api/patients/overview').then((r) => { setRows(r); setReadAt(Date.now()); setNow(Date.now()) }, onError)
  const refresh = () => { setRows(null); void load() }
  useEffect(() => {
    void load()
    const poll = setInterval(() => { if (document.visibilityState === 'visible') void load() }, POLL_MS)
    const tick = setInterval(() => setNow(Date.now()), 10_000) // the ages ("3 min ago") move on between reads
    const back = () => { if (document.visibilityState === 'visible') void load() }
    document.addEventListener('visibilitychange', back)
    return () => { clearInterval(poll); clearInterval(tick); document.removeEventListener('visibilitychange', back) }
  }, [])

  const [limit, setLimit] = useState(FIRST_ROWS)
  useEffect(() => {
    if (rows === null) return undefined
    markOnce('vf:list-shown')
    if (limit === Infinity) { markOnce('vf:list-complete'); return undefined }
    const later = setTimeout(() => setLimit(Infinity), 0)
    return () => clearTimeout(later)
  }, [rows, limit])

  const shownRows = useMemo(() => {
    if (rows === null) return []
    const f = filter.trim().toLowerCase()
    const test = FILTERS[which]
    const value = (r) => sort.key === 'patient' ? r.patient : sort.key === 'open' ? r.openAlarms : sort.key === 'battery' ? lowestBattery(r)
      : sort.key === 'seen' ? lastHeard(r) : r.vitals[sort.key]?.value ?? -Infinity
    return rows
      .filter((r) => test(r, now) && (f === '' || r.patient.toLowerCase().includes(f) || (local[r.patient] ?? '').toLowerCase().includes(f)))
      .sort((a, b) => { const x = value(a); const y = value(b); return (x < y ? -1 : x > y ? 1 : 0) * sort.dir })
  }, [rows, filter, which, sort, now])

  const header = (key, label) => html`
    <th scope="col" aria-sort=${sort.key === key ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none'}>
      <button type="button" class="sort" data-sort=${key} aria-label=${t('sortBy', label)}
        onClick=${() => setSort(sort.key === key ? { key, dir: -sort.dir } : { key, dir: 1 })}>
        ${label}<span aria-hidden="true">${sort.key === key ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''}</span>
      </button>
    </th>`

  return html`
    <main>
      <div class="title-row"><h1>${t('patients')}</h1><button type="button" onClick=${refresh}>${t('refresh')}</button></div>
      <div class="filters">
        <div><label for="filter">${t('filter')}</label>
          <input id="filter" type="search" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} /></div>
        <div><label for="which">${t('show')}</label>
          <select id="which" value=${which} onChange=${(e) => setWhich(e.currentTarget.value)}>
            ${Object.keys(FILTERS).map((k) => html`<option value=${k}>${t(`filter_${k}`)}</option>`)}
          </select></div>
      </div>
      ${rows === null ? html`<p role="status">${t('loading')}</p>` : html`
        <p class="muted" role="status" data-read-at=${readAt}>${t('shownOf', shownRows.length, rows.length)} · ${t('readAgo', age(readAt, now))}</p>
        <table class="patients">
          <thead><tr>
            ${header('patient', t('patient'))}
            ${LIST_METRICS.map((m) => header(m, t(m)))}
            ${header('battery', t('battery'))}
            ${header('seen', t('lastSeen'))}
            ${header('open', t('openAlarms'))}
          </tr></thead>
          <tbody>
            ${shownRows.slice(0, limit).map((r) => {
              const battery = lowestBattery(r)
              const heard = lastHeard(r)
              return html`
              <tr key=${r.patient} data-patient=${r.patient}>
                <th scope="row">
                  <a href=${`#/patients/${encodeURIComponent(r.patient)}`}>${r.patient}</a>
                  ${local[r.patient] ? html`<span class="local-name">${local[r.patient]}</span>` : null}
                </th>
                ${LIST_METRICS.map((m) => {
                  const l = r.vitals[m]
                  return html`<td data-metric=${m} data-value=${l?.value ?? ''} data-at=${l?.at ?? ''}>
                    ${l === undefined ? '–' : html`${shown(m, l.value)} <span class="age">${age(l.at, now)}</span>`}
                  </td>`
                })}
                <td data-battery=${battery === Infinity ? '' : battery} class=${battery < 20 ? 'alarm-count' : ''}>${battery === Infinity ? '–' : `${battery} %`}</td>
                <td data-seen=${heard < 0 ? '' : heard}>${heard < 0 ? '–' : age(heard, now)}</td>
                <td data-open=${r.openAlarms} class=${r.openAlarms > 0 ? 'alarm-count' : ''}>${r.openAlarms}</td>
              </tr>`
            })}
          </tbody>
        </table>
        ${shownRows.length === 0 ? html`<p>${t('noPatients')}</p>` : null}`}
    </main>`
}
