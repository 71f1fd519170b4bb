// #/admin/retention: how long each category is kept, set within the policy's legal bounds
// (PUT /api/retention/{category}), and the register of processing it feeds (GET /api/register).
import { html } from 'htm/preact'
import { useEffect, useState } from 'preact/hooks'
import { call, get } from '../api.js'
import { t } from '../i18n.js'
import { attempt, Outcome, Scroll } from './util.js'

/** Days as years, to one decimal where it is not whole. */
const years = (days) => String(Math.round(days / 365.25 * 10) / 10)

function Row ({ r, onSaved }) {
  const [days, setDays] = useState(String(r.days))
  const [outcome, setOutcome] = useState(null)
  const id = `ret-${r.category}`
  const save = async (e) => {
    e.preventDefault()
    const n = Number(days)
    const x = await attempt(setOutcome, () => call('PUT', `/api/retention/${r.category}`, { days: n }), () => t('a_saved', t(`a_cat_${r.category}`), n))
    if (x !== undefined) onSaved()
  }
  return html`
    <tr data-category=${r.category} data-days=${r.days}>
      <th scope="row">${t(`a_cat_${r.category}`)}</th>
      <td>
        <form class="inline-form" onSubmit=${save}>
          <label class="sr-only" for=${id}>${t('a_daysOf', t(`a_cat_${r.category}`))}</label>
          <input id=${id} type="number" class="days" min=${r.minDays} max=${r.maxDays} step="1" required value=${days} onInput=${(e) => setDays(e.currentTarget.value)} />
          <button type="submit" aria-label=${t('a_saveOf', t(`a_cat_${r.category}`))}>${t('a_save')}</button>
          <${Outcome} outcome=${outcome} />
        </form>
      </td>
      <td>${r.minDays} – ${r.maxDays}<span class="muted block">${t('a_years', years(r.minDays), years(r.maxDays))}</span><span class="muted block">${t('a_default')}: ${r.defaultDays}</span></td>
      <td class="muted">${r.source}</td>
    </tr>`
}

export function AdminRetention ({ onError }) {
  const [rows, setRows] = useState(null)
  const [register, setRegister] = useState(null)
  const reload = () => {
    get('/api/tenant/retention').then(setRows, onError)
    get('/api/register').then(setRegister, onError)
  }
  useEffect(reload, [])
  return html`
    <main class="admin">
      <h1>${t('a_retentionTitle')}</h1>
      <p>${t('a_retentionHint')}</p>
      ${rows === null ? html`<p role="status">${t('loading')}</p>` : html`
        <${Scroll} label=${t('a_retentionTitle')}><table class="retention">
          <thead><tr><th scope="col">${t('a_category')}</th><th scope="col">${t('a_retentionDays')}</th><th scope="col">${t('a_bounds')}</th><th scope="col">${t('a_sourceDevices')}</th></tr></thead>
          <tbody>${rows.map((r) => html`<${Row} key=${r.category} r=${r} onSaved=${reload} />`)}</tbody>
        </table><//>`}
      <h2>${t('a_register')}</h2>
      ${register === null ? html`<p role="status">${t('loading')}</p>` : html`
        <${Scroll} label=${t('a_register')}><table class="register">
          <thead><tr><th scope="col">${t('a_activity')}</th><th scope="col">${t('a_category')}</th><th scope="col">${t('a_recipients')}</th></tr></thead>
          <tbody>${register.map((a) => html`<tr data-purpose=${a.purpose}>
            <th scope="row">${t(`a_pur_${a.purpose}`)}</th>
            <td>${a.categories.map((c) => `${t(`a_cat_${c.category}`)} (${c.basis}, ${t('a_days', c.retentionDays)})`).join('; ')}</td>
            <td>${a.recipients.join(', ')}</td></tr>`)}</tbody>
        </table><//>`}
    </main>`
}
