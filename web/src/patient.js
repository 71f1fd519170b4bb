import { html } from 'htm/preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiError, get, tenant } from './api.js'
import { Chart, Hypnogram, Trend } from './chart.js'
import { age, clock, t } from './i18n.js'
import { names, setName } from './names.js'
import { LIST_METRICS, markOnce, shown } from './patients.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
export const RANGES = [{ key: 'lastHour', ms: HOUR }, { key: 'last24h', ms: DAY }, { key: 'last7d', ms: 7 * DAY }, { key: 'last30d', ms: 30 * DAY }]
/** Points per chart: the API downsamples to at most this many buckets (15 s for an hour, 42 min for 7 days). */
const BUCKETS = 240
/** The narrowest view zooming in goes to. */
const MIN_VIEW_MS = 5 * 60_000
/** The order the charts come in: the list's vitals first. */
const CHART_ORDER = [...LIST_METRICS, 'hrv_rmssd', 'steps', 'active_energy', 'barometric_altitude']
const SPOT_COLUMNS = ['systolic', 'diastolic', 'pulse', 'spo2', 'temperature', 'glucose', 'weight']
const SPOT_UNIT = { systolic: 'mmHg', diastolic: 'mmHg', pulse: 'bpm', spo2: '%', temperature: '°C', glucose: 'mmol/L', weight: 'kg' }

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

const fixed = (v, d = 1) => v === null || v === undefined ? '–' : String(Number(Number(v).toFixed(d)))

/** Spot measurements (cVitals) of the last 30 days: a table, newest first, and a trend each for blood pressure, glucose and weight. */
function Spot ({ rows, from, to }) {
  return html`
    <section aria-labelledby="spot-h">
      <h2 id="spot-h">${t('spotMeasurements')} <span class="muted">(${t('last30d')})</span></h2>
      ${rows.length === 0 ? html`<p class="muted" data-empty="spot">${t('noData')}</p>` : html`
        <div class="charts">
          <${Trend} title=${t('bloodPressure')} unit="mmHg" columns=${['systolic', 'diastolic']} rows=${rows} from=${from} to=${to} />
          <${Trend} title=${t('spot_glucose')} unit="mmol/L" columns=${['glucose']} rows=${rows} from=${from} to=${to} />
          <${Trend} title=${t('spot_weight')} unit="kg" columns=${['weight']} rows=${rows} from=${from} to=${to} />
        </div>
        <div class="scroll" tabindex="0" role="region" aria-labelledby="spot-h">
          <table class="spot">
            <thead><tr><th scope="col">${t('time')}</th>${SPOT_COLUMNS.map((c) => html`<th scope="col">${t(`spot_${c}`)} <span class="muted">(${SPOT_UNIT[c]})</span></th>`)}<th scope="col">${t('device')}</th></tr></thead>
            <tbody>
              ${[...rows].reverse().map((r) => html`
                <tr data-spot-at=${r.at}>
                  <th scope="row">${clock(Number(r.at))}</th>
                  ${SPOT_COLUMNS.map((c) => html`<td data-col=${c} data-value=${r[c] ?? ''}>${fixed(r[c], c === 'glucose' || c === 'temperature' || c === 'weight' ? 1 : 0)}</td>`)}
                  <td>${r.device}</td>
                </tr>`)}
            </tbody>
          </table>
        </div>`}
    </section>`
}

/** Alarm history of the last 30 days with who acknowledged each. */
function AlarmHistory ({ rows }) {
  return html`
    <section aria-labelledby="alarm-h">
      <h2 id="alarm-h">${t('alarmHistory')} <span class="muted">(${t('last30d')})</span></h2>
      ${rows.length === 0 ? html`<p class="muted" data-empty="alarms">${t('noData')}</p>` : html`
        <table class="alarms">
          <thead><tr><th scope="col">${t('time')}</th><th scope="col">${t('kind')}</th><th scope="col">${t('device')}</th><th scope="col">${t('status')}</th></tr></thead>
          <tbody>${rows.map((a) => html`
            <tr data-alarm=${`${a.device}/${a.seq}`} class=${a.acknowledgedBy ? 'acked' : 'open'}>
              <td>${clock(Number(a.at))}</td><td>${t(a.kind)}</td><td>${a.device}</td>
              <td>${a.acknowledgedBy ? html`<span data-acked-by=${a.acknowledgedBy}>${t('acknowledgedBy', a.acknowledgedBy)} · ${clock(Number(a.acknowledgedAt))}</span>` : html`<strong class="alarm-count">${t('open')}</strong>`}</td>
            </tr>`)}</tbody>
        </table>`}
    </section>`
}

/** The devices bound to the patient over time (the registry's bindings). */
function Devices ({ rows }) {
  return html`
    <section aria-labelledby="dev-h">
      <h2 id="dev-h">${t('devicesOverTime')}</h2>
      ${rows.length === 0 ? html`<p class="muted" data-empty="devices">${t('noData')}</p>` : html`
        <table class="devices">
          <thead><tr><th scope="col">${t('device')}</th><th scope="col">${t('family')}</th><th scope="col">${t('boundFrom')}</th><th scope="col">${t('boundTo')}</th></tr></thead>
          <tbody>${rows.map((d) => html`
            <tr data-device=${d.device} data-from=${d.from} data-to=${d.to ?? ''}>
              <td>${d.device}</td><td>${t(`family_${d.family}`)}</td><td>${d.from === 0 ? t('fromEnrolment') : clock(d.from)}</td><td>${d.to === null ? t('boundNow') : clock(d.to)}</td>
            </tr>`)}</tbody>
        </table>`}
    </section>`
}

/** @param {{ patient: string, range?: string, onError: (e: unknown) => void }} props (range: a RANGES key from the URL, #/patients/p1/last7d) */
export function Patient ({ patient, range, onError }) {
  const [latest, setLatest] = useState(null)
  const [missing, setMissing] = useState(false)
  const [view, setView] = useState(() => { const r = RANGES.find((x) => x.key === range) ?? RANGES[0]; const to = Date.now(); return { key: r.key, from: to - r.ms, to } })
  const [charts, setCharts] = useState(null)
  const [sleep, setSleep] = useState(null)
  const [other, setOther] = useState(null)
  const path = `/api/patients/${encodeURIComponent(patient)}`

  useEffect(() => {
    setLatest(null); setMissing(false)
    get(`${path}/latest`).then(setLatest, (err) => { if (err instanceof ApiError && err.status === 404) setMissing(true); else onError(err) })
  }, [patient])

  useEffect(() => { if (latest !== null) markOnce('vf:patient-shown') }, [latest])

  // the charts of the view (every metric in one request) and its sleep stages
  useEffect(() => {
    if (latest === null) return undefined
    let live = true
    setCharts(null); setSleep(null)
    const q = `from=${view.from}&to=${view.to}`
    get(`${path}/charts?${q}&buckets=${BUCKETS}`).then((c) => { if (live) setCharts({ view, ...c }) }, onError)
    get(`${path}/sleep?${q}`).then((s) => { if (live) setSleep({ view, runs: s }) }, onError)
    return () => { live = false }
  }, [latest, view])

  // what does not follow the charts' view: spot measurements and alarms of the last 30 days, devices over time
  useEffect(() => {
    if (latest === null) return
    const to = Date.now() + 60_000
    const from = to - 30 * DAY
    Promise.all([get(`${path}/spot?from=${from}&to=${to}`), get(`${path}/alarms?from=${from}&to=${to}`), get(`${path}/devices`)])
      .then(([spot, alarms, devices]) => setOther({ from, to, spot, alarms, devices }), onError)
  }, [latest])

  const ready = charts !== null && charts.view === view && sleep !== null && sleep.view === view
  useEffect(() => { if (ready) markOnce('vf:charts-ready') }, [ready])

  if (missing) {
    return html`<main><h1>${t('notFound')}</h1><p data-not-found="true">${t('notFoundHint')}</p><p><a href="#/patients">${t('back')}</a></p></main>`
  }
  if (latest === null) return html`<main><p role="status">${t('loading')}</p></main>`

  const byMetric = Object.fromEntries(latest.map((l) => [l.metric, l]))
  const zoomTo = (from, to) => {
    const mid = (from + to) / 2
    const half = Math.max(MIN_VIEW_MS, to - from) / 2
    setView({ key: 'zoom', from: Math.round(mid - half), to: Math.round(mid + half) })
  }
  const span = view.to - view.from
  const shift = (f) => setView({ key: 'zoom', from: Math.round(view.from + f * span), to: Math.round(view.to + f * span) })
  const scale = (f) => zoomTo(view.from + span / 2 - (span * f) / 2, view.from + span / 2 + (span * f) / 2)
  const pick = (r) => { const to = Date.now(); setView({ key: r.key, from: to - r.ms, to }) }

  return html`
    <main>
      <p><a href="#/patients">← ${t('back')}</a></p>
      <h1>${t('patient')} <span class="id">${patient}</span></h1>
      <${LocalName} patient=${patient} />
      <dl class="latest">
        ${LIST_METRICS.map((m) => html`<div data-metric=${m}><dt>${t(m)}</dt><dd>${byMetric[m] ? html`${shown(m, byMetric[m].value)} <span class="age">${age(byMetric[m].at)}</span>` : '–'}</dd></div>`)}
      </dl>
      <div class="ranges" role="group" aria-label=${t('range')}>
        ${RANGES.map((r) => html`<button type="button" data-range=${r.key} aria-pressed=${r.key === view.key ? 'true' : 'false'} onClick=${() => pick(r)}>${t(r.key)}</button>`)}
      </div>
      <div class="ranges" role="group" aria-label=${t('zoomPan')}>
        <button type="button" data-zoom="earlier" onClick=${() => shift(-0.5)}>← ${t('earlier')}</button>
        <button type="button" data-zoom="in" disabled=${span <= MIN_VIEW_MS} onClick=${() => scale(0.5)}>${t('zoomIn')}</button>
        <button type="button" data-zoom="out" onClick=${() => scale(2)}>${t('zoomOut')}</button>
        <button type="button" data-zoom="later" onClick=${() => shift(0.5)}>${t('later')} →</button>
        <span class="muted" data-view-from=${view.from} data-view-to=${view.to}>${clock(view.from)} – ${clock(view.to)} · ${t('dragToZoom')}</span>
      </div>
      ${!ready ? html`<p role="status">${t('loading')}</p>` : html`
        <div class="charts">
          ${CHART_ORDER.map((m) => html`<${Chart} key=${`${view.key}/${view.from}/${m}`} range=${view.key} metric=${m} points=${charts.metrics[m] ?? []} from=${charts.from} to=${charts.to} buckets=${charts.buckets} onZoom=${zoomTo} />`)}
          <${Hypnogram} key=${`${view.key}/${view.from}/sleep`} range=${view.key} runs=${sleep.runs} from=${view.from} to=${view.to} onZoom=${zoomTo} />
        </div>`}
      ${other === null ? html`<p role="status">${t('loading')}</p>` : html`
        <${Spot} rows=${other.spot} from=${other.from} to=${other.to} />
        <${AlarmHistory} rows=${other.alarms} />
        <${Devices} rows=${other.devices} />`}
    </main>`
}
