// #/admin/patients/{id}: one patient's consent (grant, withdraw, a guardian's grant for a
// minor; the history), legal hold and restriction, and the data-subject rights (rights.js).
// An id of another organisation answers 404 and is shown as "not found".
import { html } from 'htm/preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiError, call, get } from '../api.js'
import { t } from '../i18n.js'
import { AccessReport, Erasure, Export } from './rights.js'
import { attempt, CONSENT_CATEGORIES, enc, Outcome, PURPOSES, Scroll, SOURCES, when } from './util.js'

function ConsentForm ({ path, onRecorded }) {
  const [f, setF] = useState({ purpose: 'care', category: 'vitals', action: 'grant', source: 'professional', validFrom: '', erase: false })
  const [outcome, setOutcome] = useState(null)
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value })
  const submit = async (e) => {
    e.preventDefault()
    const body = { purpose: f.purpose, category: f.category, action: f.action, source: f.source }
    if (f.action === 'grant' && f.validFrom !== '') body.validFromMs = new Date(f.validFrom).getTime()
    if (f.action === 'withdraw' && f.erase) body.erase = true
    const r = await attempt(setOutcome, () => call('POST', `${path}/consent`, body), (x) => t('a_recorded', x.version))
    if (r !== undefined) onRecorded()
  }
  return html`
    <form class="admin-form consent-form" onSubmit=${submit}>
      <fieldset>
        <legend>${t('a_action')}</legend>
        ${['grant', 'withdraw'].map((a) => html`<label class="choice"><input type="radio" name="action" value=${a} checked=${f.action === a} onChange=${set('action')} /> ${t(`a_act_${a}`)}</label>`)}
      </fieldset>
      <div class="fields">
        <div><label for="c-purpose">${t('a_purpose')}</label>
          <select id="c-purpose" value=${f.purpose} onChange=${set('purpose')}>${PURPOSES.map((p) => html`<option value=${p}>${t(`a_pur_${p}`)}</option>`)}</select></div>
        <div><label for="c-category">${t('a_category')}</label>
          <select id="c-category" value=${f.category} onChange=${set('category')}>${CONSENT_CATEGORIES.map((c) => html`<option value=${c}>${t(`a_cat_${c}`)}</option>`)}</select></div>
        <div><label for="c-source">${t('a_source')}</label>
          <select id="c-source" value=${f.source} onChange=${set('source')} aria-describedby="c-source-hint">${SOURCES.map((s) => html`<option value=${s}>${t(`a_src_${s}`)}</option>`)}</select></div>
        ${f.action === 'grant'
          ? html`<div><label for="c-valid">${t('a_validFrom')}</label><input id="c-valid" type="datetime-local" value=${f.validFrom} onInput=${set('validFrom')} /></div>`
          : html`<div><label class="choice"><input type="checkbox" checked=${f.erase} onChange=${set('erase')} /> ${t('a_erase')}</label></div>`}
      </div>
      <p class="muted" id="c-source-hint">${t('a_guardianHint')}</p>
      <button type="submit" class="primary">${t('a_record')}</button>
      <${Outcome} outcome=${outcome} />
    </form>`
}

function History ({ events }) {
  if (events.length === 0) return html`<p>${t('a_noHistory')}</p>`
  return html`
    <${Scroll} label=${t('a_history')}><table class="consent-history">
      <thead><tr>${['a_version', 'a_recordedAt', 'a_action', 'a_purpose', 'a_category', 'a_source', 'a_validFromCol'].map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
      <tbody>
        ${[...events].reverse().map((e) => html`
          <tr data-version=${e.version} data-action=${e.action} data-category=${e.category} data-source=${e.source}>
            <td>${e.version}</td><td>${when(e.recordedAtMs)}<span class="muted block">${t('a_byWhom', e.recordedBy)}</span></td><td>${t(`a_act_${e.action}`)}</td>
            <td>${t(`a_pur_${e.purpose}`)}</td><td>${t(`a_cat_${e.category}`)}</td><td>${t(`a_src_${e.source}`)}</td><td>${when(e.validFromMs)}</td>
          </tr>`)}
      </tbody>
    </table><//>`
}

/** A legal hold or a restriction: the current state, a reason, and the button that sets or lifts it. */
function Flag ({ path, kind, on, onChanged }) {
  const [reason, setReason] = useState('')
  const [outcome, setOutcome] = useState(null)
  const hold = kind === 'hold'
  const submit = async (e) => {
    e.preventDefault()
    const body = hold ? { hold: !on, reason } : { restrict: !on, reason }
    const r = await attempt(setOutcome, () => call('POST', `${path}/${hold ? 'hold' : 'restriction'}`, body), () => t(hold ? (on ? 'a_holdOff' : 'a_holdOn') : (on ? 'a_restrictedOff' : 'a_restrictedOn')))
    if (r !== undefined) { setReason(''); onChanged() }
  }
  const id = `flag-${kind}`
  return html`
    <form class="admin-form flag" data-flag=${kind} data-on=${on ? 'true' : 'false'} onSubmit=${submit}>
      <p><strong>${t(hold ? (on ? 'a_holdOn' : 'a_holdOff') : (on ? 'a_restrictedOn' : 'a_restrictedOff'))}</strong></p>
      <label for=${id}>${t('a_reason')}</label>
      <input id=${id} value=${reason} required maxlength="200" onInput=${(e) => setReason(e.currentTarget.value)} />
      <button type="submit">${t(hold ? (on ? 'a_liftHold' : 'a_placeHold') : (on ? 'a_unrestrict' : 'a_restrict'))}</button>
      <${Outcome} outcome=${outcome} />
    </form>`
}

export function AdminPatient ({ patient, onError }) {
  const [state, setState] = useState(null) // { legalHold, restricted, events }
  const [missing, setMissing] = useState(false)
  const [erased, setErased] = useState(false)
  const path = `/api/patients/${enc(patient)}`
  const reload = () => get(`${path}/consent`).then(setState, (err) => { if (err instanceof ApiError && err.status === 404) setMissing(true); else onError(err) })
  useEffect(() => { void reload() }, [patient])

  if (missing) {
    return html`<main class="admin"><h1>${t('a_notFound')}</h1><p data-not-found="true">${t('a_notFoundHint')}</p><p><a href="#/admin">${t('a_back')}</a></p></main>`
  }
  if (state === null) return html`<main class="admin"><p role="status">${t('loading')}</p></main>`
  return html`
    <main class="admin">
      <p><a href="#/admin">← ${t('a_back')}</a></p>
      <h1>${t('a_patientTitle')} <span class="id">${patient}</span></h1>
      ${erased ? null : html`
        <section aria-labelledby="h-consent">
          <h2 id="h-consent">${t('a_consent')}</h2>
          <${ConsentForm} path=${path} onRecorded=${reload} />
          <h3>${t('a_history')}</h3>
          <${History} events=${state.events} />
        </section>
        <section aria-labelledby="h-hold">
          <h2 id="h-hold">${t('a_holdTitle')}</h2>
          <div class="flags">
            <${Flag} path=${path} kind="hold" on=${state.legalHold} onChanged=${reload} />
            <${Flag} path=${path} kind="restriction" on=${state.restricted} onChanged=${reload} />
          </div>
        </section>`}
      <section aria-labelledby="h-rights">
        <h2 id="h-rights">${t('a_rights')}</h2>
        ${erased ? null : html`<${AccessReport} path=${path} patient=${patient} />
        <${Export} path=${path} />`}
        <${Erasure} path=${path} patient=${patient} onErased=${() => setErased(true)} />
      </section>
    </main>`
}
