import { html } from 'htm/preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiError, get, tenant } from './api.js'
import { Chart } from './chart.js'
import { age, t } from './i18n.js'
import { names, setName } from './names.js'
import { LIST_METRICS, shown } from './patients.js'

const HOUR = 3_600_000
export const RANGES = [{ key: 'lastHour', ms: HOUR }, { key: 'last24h', ms: 24 * HOUR }, { key: 'last7d', ms: 7 * 24 * HOUR }]
/** Points per chart: the API downsamples to at most this many min/avg/max buckets (15 s, 6 min, 42 min). */
const BUCKETS = 240

function LocalName ({ patient }) {
  const [name, setValue] = useState(names(tenant())[patient] ?? '')
  const [saved, setSaved] = useState(false)
  const save = (e) => { e.preventDefault(); setName(tenant(), patient, name); setSaved(true) }
  return html`
    <form class="local-name-form" onSubmit=${save}>
      <label for="local-name">${t('localName')}</label>
      <input id="local-name" value=${name} autocomplete="off" onInput=${(e) => { setValue(e.currentTarget.value); setSaved(false) }} />
      <button type="submit">${t('saveName')}</button>
      <p class="muted" id="local-name-hint">${t('nameHint')}${saved ? ' ✓' : ''}</p>
    </form>`
}

/** @param {{ patient: string, onError: (e: unknown) => void }} props */
export function Patient ({ patient, onError }) {
  const [latest, setLatest] = useState(null)
  const [missing, setMissing] = useState(false)
  const [range, setRange] = useState(RANGES[0])
  const [charts, setCharts] = useState(null)
  const path = `/api/patients/${encodeURIComponent(patient)}`

  useEffect(() => {
    setLatest(null); setMissing(false)
    get(`${path}/latest`).then(setLatest, (err) => { if (err instanceof ApiError && err.status === 404) setMissing(true); else onError(err) })
  }, [patient])

  useEffect(() => {
    if (latest === null) return undefined
    let live = true
    const to = Date.now()
    const from = to - range.ms
    setCharts(null)
    Promise.all(LIST_METRICS.map(async (metric) => ({ metric, points: await get(`${path}/series?metric=${metric}&from=${from}&to=${to}&buckets=${BUCKETS}`) })))
      .then((c) => { if (live) setCharts({ range: range.key, from, to, list: c }) }, onError)
    return () => { live = false }
  }, [latest, range])

  if (missing) {
    return html`<main><h1>${t('notFound')}</h1><p data-not-found="true">${t('notFoundHint')}</p><p><a href="#/patients">${t('back')}</a></p></main>`
  }
  if (latest === null) return html`<main><p role="status">${t('loading')}</p></main>`
  const byMetric = Object.fromEntries(latest.map((l) => [l.metric, l]))
  return html`
    <main>
      <p><a href="#/patients">← ${t('back')}</a></p>
      <h1>${t('patient')} <span class="id">${patient}</span></h1>
      <${LocalName} patient=${patient} />
      <dl class="latest">
        ${LIST_METRICS.map((m) => html`<div data-metric=${m}><dt>${t(m)}</dt><dd>${byMetric[m] ? html`${shown(m, byMetric[m].value)} <span class="age">${age(byMetric[m].at)}</span>` : '–'}</dd></div>`)}
      </dl>
      <div class="ranges" role="group" aria-label=${t('range')}>
        ${RANGES.map((r) => html`<button type="button" data-range=${r.key} aria-pressed=${r === range ? 'true' : 'false'} onClick=${() => setRange(r)}>${t(r.key)}</button>`)}
      </div>
      ${charts === null || charts.range !== range.key ? html`<p role="status">${t('loading')}</p>` : html`
        <div class="charts">
          ${charts.list.map((c) => html`<${Chart} key=${`${charts.range}/${c.metric}`} range=${charts.range} metric=${c.metric} points=${c.points} from=${charts.from} to=${charts.to} buckets=${BUCKETS} />`)}
        </div>`}
    </main>`
}
