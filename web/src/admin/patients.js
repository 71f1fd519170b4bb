// #/admin: the tenant's patients (restricted ones too) with their legal hold and restriction,
// a field to open one by its pseudonymous id, and the tenant's erasure receipts.
import { html } from 'htm/preact'
import { useEffect, useState } from 'preact/hooks'
import { get, tenant } from '../api.js'
import { t } from '../i18n.js'
import { names } from '../names.js'
import { Receipt } from './rights.js'
import { enc, saveJson } from './util.js'

export function AdminPatients ({ onError }) {
  const [rows, setRows] = useState(null)
  const [receipts, setReceipts] = useState(null)
  const [id, setId] = useState('')
  const local = names(tenant())

  useEffect(() => {
    get('/api/tenant/patients').then(setRows, onError)
    get('/api/erasure-receipts').then(setReceipts, onError)
  }, [])

  const open = (e) => { e.preventDefault(); if (id.trim() !== '') location.hash = `#/admin/patients/${enc(id.trim())}` }

  return html`
    <main class="admin">
      <h1>${t('a_patients')}</h1>
      <form class="inline-form" onSubmit=${open}>
        <label for="open-id">${t('a_openById')}</label>
        <input id="open-id" class="id" value=${id} autocomplete="off" spellcheck="false" onInput=${(e) => setId(e.currentTarget.value)} />
        <button type="submit">${t('a_open')}</button>
      </form>
      ${rows === null ? html`<p role="status">${t('loading')}</p>` : html`
        <table class="admin-patients">
          <thead><tr><th scope="col">${t('patient')}</th><th scope="col">${t('a_flags')}</th></tr></thead>
          <tbody>
            ${rows.map((r) => html`
              <tr data-patient=${r.patient}>
                <td><a class="id" href=${`#/admin/patients/${enc(r.patient)}`}>${r.patient}</a>${local[r.patient] ? html`<span class="local-name">${local[r.patient]}</span>` : null}</td>
                <td>${r.legalHold ? html`<span class="tag">${t('a_held')}</span>` : null}${r.restricted ? html`<span class="tag">${t('a_restricted')}</span>` : null}${r.legalHold || r.restricted ? null : t('a_none')}</td>
              </tr>`)}
          </tbody>
        </table>`}
      <h2>${t('a_receipts')}</h2>
      ${receipts === null ? html`<p role="status">${t('loading')}</p>` : receipts.length === 0 ? html`<p>${t('a_noReceipts')}</p>` : html`
        <ul class="receipts">
          ${receipts.map((r) => html`<li data-receipt=${r.receipt_id}>
            <${Receipt} receipt=${{ receiptId: r.receipt_id, subjectHash: r.subject_hash, scope: r.scope, requestedBy: r.requested_by, requestedAtMs: r.requested_ms, purgedAtMs: r.purged_ms, rowCounts: r.row_counts }} />
            <button type="button" onClick=${() => saveJson(r, `erasure-receipt-${r.receipt_id}.json`)}>${t('a_downloadReceipt')}</button>
          </li>`)}
        </ul>`}
    </main>`
}
