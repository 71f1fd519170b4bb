// A patient's data-subject rights on the admin page: the access report shown readably, the
// portability export downloaded with the session's token (never a URL with it), and erasure
// behind a typed confirmation, with its receipt shown and downloadable.
import { html } from 'htm/preact'
import { useState } from 'preact/hooks'
import { call, download, get } from '../api.js'
import { t } from '../i18n.js'
import { attempt, Outcome, saveBlob, saveJson, Scroll, when } from './util.js'

const FORMATS = ['fhir', 'ndjson', 'csv']
const cat = (c) => t(`a_cat_${c}`)

function Report ({ r }) {
  return html`
    <div class="report" data-report=${r.patient}>
      <dl class="facts">
        <div><dt>${t('a_controller')}</dt><dd>${r.controller}</dd></div>
        <div><dt>${t('a_processor')}</dt><dd>${r.processor}</dd></div>
        <div><dt>${t('a_generated')}</dt><dd>${when(r.generatedAtMs)}</dd></div>
        <div><dt>${t('a_held')}</dt><dd>${t(r.legalHold ? 'a_yes' : 'a_no')}</dd></div>
        <div><dt>${t('a_restricted')}</dt><dd>${t(r.restricted ? 'a_yes' : 'a_no')}</dd></div>
      </dl>
      <h4>${t('a_data')}</h4>
      ${r.data.length === 0 ? html`<p>${t('a_noData')}</p>` : html`
        <${Scroll} label=${t('a_data')}><table class="report-data">
          <thead><tr>${['a_table', 'a_category', 'a_purpose', 'a_basis', 'a_rows', 'a_period', 'a_sourceDevices', 'a_retentionDays', 'a_recipients'].map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
          <tbody>${r.data.map((d) => html`
            <tr data-table=${d.table} data-rows=${d.rows}>
              <td class="id">${d.table}</td><td>${d.categories.map(cat).join(', ')}</td><td>${t(`a_pur_${d.purpose}`)}</td><td>${d.legalBasis}</td>
              <td>${d.rows}</td><td>${when(d.firstMs)} – ${when(d.lastMs)}</td><td>${d.source.map((s) => `${s.device} (${t(`a_fam_${s.family}`)})`).join(', ')}</td>
              <td>${t('a_days', d.retentionDays)}</td><td>${d.recipients.join(', ')}</td>
            </tr>`)}</tbody>
        </table><//>`}
      ${r.categoriesWithoutData.length > 0 ? html`<p class="muted">${t('a_withoutData', r.categoriesWithoutData.map(cat).join(', '))}</p>` : null}
      <p>${t('a_consentEvents', r.consent.length)}</p>
      <h4>${t('a_accessedBy')}</h4>
      <${Scroll} label=${t('a_accessedBy')}><table class="report-access">
        <thead><tr>${['a_when', 'user', 'a_role', 'a_action', 'a_detail'].map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
        <tbody>${r.accessedBy.map((a) => html`<tr><td>${when(a.ts_ms)}</td><td>${a.user}</td><td>${t(`a_role_${a.role}`)}</td><td>${a.action}</td><td>${a.detail}</td></tr>`)}</tbody>
      </table><//>
    </div>`
}

export function AccessReport ({ path, patient }) {
  const [report, setReport] = useState(null)
  const [outcome, setOutcome] = useState(null)
  const show = async () => {
    const r = await attempt(setOutcome, () => get(`${path}/access-report`), () => '')
    if (r !== undefined) { setReport(r); setOutcome(null) }
  }
  return html`
    <div class="right">
      <h3>${t('a_accessReport')}</h3>
      <button type="button" onClick=${show}>${t('a_showReport')}</button>
      ${report === null ? null : html`<button type="button" onClick=${() => saveJson(report, `access-report-${patient}.json`)}>${t('a_downloadReport')}</button><${Report} r=${report} />`}
      <${Outcome} outcome=${outcome} />
    </div>`
}

export function Export ({ path }) {
  const [format, setFormat] = useState('fhir')
  const [outcome, setOutcome] = useState(null)
  const run = async (e) => {
    e.preventDefault()
    await attempt(setOutcome, async () => {
      const { blob, name } = await download(`${path}/export?format=${format}`)
      saveBlob(blob, name)
      return name
    }, (name) => t('a_downloaded', name))
  }
  return html`
    <form class="right inline-form" onSubmit=${run}>
      <h3>${t('a_export')}</h3>
      <label for="x-format">${t('a_format')}</label>
      <select id="x-format" value=${format} onChange=${(e) => setFormat(e.currentTarget.value)}>${FORMATS.map((f) => html`<option value=${f}>${t(`a_fmt_${f}`)}</option>`)}</select>
      <button type="submit">${t('a_download')}</button>
      <${Outcome} outcome=${outcome} />
    </form>`
}

/** An erasure receipt: who, when, what, how many rows; the subject only as a hash. */
export function Receipt ({ receipt: r }) {
  const scope = r.scope === 'all' || r.scope === '' ? t('a_all') : (Array.isArray(r.scope) ? r.scope : String(r.scope).split(',')).map(cat).join(', ')
  return html`
    <dl class="facts receipt" data-receipt-id=${r.receiptId}>
      <div><dt>${t('a_receipt')}</dt><dd class="id">${r.receiptId}</dd></div>
      <div><dt>${t('a_subjectHash')}</dt><dd class="id hash">${r.subjectHash}</dd></div>
      <div><dt>${t('a_scope')}</dt><dd>${scope}</dd></div>
      <div><dt>${t('a_requestedBy')}</dt><dd>${r.requestedBy}</dd></div>
      <div><dt>${t('a_requestedAt')}</dt><dd>${when(r.requestedAtMs)}</dd></div>
      <div><dt>${t('a_purgedAt')}</dt><dd>${r.purgedAtMs ? when(r.purgedAtMs) : t('a_pending')}</dd></div>
      <div><dt>${t('a_rows')}</dt><dd>${Object.entries(r.rowCounts ?? {}).filter(([, n]) => Number(n) > 0).map(([k, n]) => `${k}: ${n}`).join(', ')}</dd></div>
    </dl>`
}

export function Erasure ({ path, patient, onErased }) {
  const [typed, setTyped] = useState('')
  const [receipt, setReceipt] = useState(null)
  const [outcome, setOutcome] = useState(null)
  const erase = async (e) => {
    e.preventDefault()
    if (typed !== patient) return
    const r = await attempt(setOutcome, () => call('POST', `${path}/erasure`, {}), () => t('a_erased'))
    if (r !== undefined) { setReceipt(r); onErased() }
  }
  if (receipt !== null) {
    return html`
      <div class="right erased">
        <h3>${t('a_erasure')}</h3>
        <${Outcome} outcome=${outcome} />
        <${Receipt} receipt=${receipt} />
        <button type="button" onClick=${() => saveJson(receipt, `erasure-receipt-${receipt.receiptId}.json`)}>${t('a_downloadReceipt')}</button>
      </div>`
  }
  return html`
    <form class="right danger" onSubmit=${erase}>
      <h3>${t('a_erasure')}</h3>
      <p>${t('a_erasureHint')}</p>
      <label for="erase-confirm">${t('a_confirmId', patient)}</label>
      <input id="erase-confirm" class="id" value=${typed} autocomplete="off" spellcheck="false" onInput=${(e) => setTyped(e.currentTarget.value)} />
      <button type="submit" class="danger" disabled=${typed !== patient}>${t('a_eraseNow')}</button>
      <${Outcome} outcome=${outcome} />
    </form>`
}
