import { html } from 'htm/preact'
import { useEffect, useMemo, useState } from 'preact/hooks'
import { get, tenant } from './api.js'
import { age, t } from './i18n.js'
import { names } from './names.js'

export const LIST_METRICS = ['heart_rate', 'spo2', 'respiration_rate', 'skin_temperature']
const DAY = 86_400_000

/** A stored value with its unit, rounded for reading. */
export function shown (metric, value) {
  return `${Number(value.toFixed(metric === 'skin_temperature' ? 1 : 0))} ${t(`unit_${metric}`)}`
}

/** Every patient of the tenant with the latest value of each vital and their open (unacknowledged) alarms of the last day. */
async function load () {
  const [patients, alarms] = await Promise.all([get('/api/patients'), get(`/api/alarms?from=${Date.now() - DAY}`)])
  const open = new Map()
  for (const a of alarms) if (!a.acknowledgedBy) open.set(a.patient, (open.get(a.patient) ?? 0) + 1)
  return await Promise.all(patients.map(async ({ patient }) => {
    const latest = Object.fromEntries((await get(`/api/patients/${encodeURIComponent(patient)}/latest`)).map((l) => [l.metric, l]))
    return { patient, latest, open: open.get(patient) ?? 0 }
  }))
}

export function Patients ({ onError }) {
  const [rows, setRows] = useState(null)
  const [filter, setFilter] = useState('')
  const [sort, setSort] = useState({ key: 'patient', dir: 1 })
  const local = names(tenant())

  // no polling: every read of a patient's data is a row in the access log (NEN 7513), so the list is read
  // when opened and when the user asks for it again
  const refresh = () => { setRows(null); load().then(setRows, onError) }
  useEffect(refresh, [])

  const shownRows = useMemo(() => {
    if (rows === null) return []
    const f = filter.trim().toLowerCase()
    const value = (r) => sort.key === 'patient' ? r.patient : sort.key === 'open' ? r.open : r.latest[sort.key]?.value ?? -Infinity
    return rows
      .filter((r) => f === '' || r.patient.toLowerCase().includes(f) || (local[r.patient] ?? '').toLowerCase().includes(f))
      .sort((a, b) => { const x = value(a); const y = value(b); return (x < y ? -1 : x > y ? 1 : 0) * sort.dir })
  }, [rows, filter, sort])

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
      <label for="filter">${t('filter')}</label>
      <input id="filter" type="search" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} />
      ${rows === null ? html`<p role="status">${t('loading')}</p>` : html`
        <table class="patients">
          <thead><tr>
            ${header('patient', t('patient'))}
            ${LIST_METRICS.map((m) => header(m, t(m)))}
            ${header('open', t('openAlarms'))}
          </tr></thead>
          <tbody>
            ${shownRows.map((r) => html`
              <tr key=${r.patient} data-patient=${r.patient}>
                <th scope="row">
                  <a href=${`#/patients/${encodeURIComponent(r.patient)}`}>${r.patient}</a>
                  ${local[r.patient] ? html`<span class="local-name">${local[r.patient]}</span>` : null}
                </th>
                ${LIST_METRICS.map((m) => {
                  const l = r.latest[m]
                  return html`<td data-metric=${m} data-value=${l?.value ?? ''} data-at=${l?.at ?? ''}>
                    ${l === undefined ? '–' : html`${shown(m, l.value)} <span class="age">${age(l.at)}</span>`}
                  </td>`
                })}
                <td data-open=${r.open} class=${r.open > 0 ? 'alarm-count' : ''}>${r.open}</td>
              </tr>`)}
          </tbody>
        </table>
        ${shownRows.length === 0 ? html`<p>${t('noPatients')}</p>` : null}`}
    </main>`
}
