// Small pieces the administration screens share: saving a file the page holds, and the
// outcome line under a form (a status, or the API's refusal with its code).
import { html } from 'htm/preact'
import { ApiError } from '../api.js'
import { t } from '../i18n.js'

export const CONSENT_CATEGORIES = ['vitals', 'sleep', 'activity', 'location', 'spot_measurements']
export const PURPOSES = ['care', 'research', 'service_improvement']
export const SOURCES = ['professional', 'app', 'paper_form', 'guardian', 'admin']
export const FAMILIES = ['bracelet', 'cvitals', 'calarm', 'gateway', 'responder']
export const ROLES = ['clinician', 'responder', 'researcher', 'tenant_admin']

/**
 * Hands a Blob to the browser as a download through a short-lived blob: URL (nothing goes to the
 * node, nothing stays in storage); the URL is revoked once the download has started.
 */
export function saveBlob (blob, name) {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 30_000)
}

export function saveJson (value, name) {
  saveBlob(new Blob([JSON.stringify(value, null, 2)], { type: 'application/json' }), name)
}

/** `{ ok: text }` or `{ error }` → the line under a form; errors other than the API's are the app's own. */
export function Outcome ({ outcome }) {
  if (outcome === null || outcome === undefined) return null
  if (outcome.ok !== undefined) return html`<p class="outcome ok" role="status">${outcome.ok}</p>`
  const e = outcome.error
  const code = e instanceof ApiError ? e.code : 'ING_ERR_HTTP'
  const text = e instanceof ApiError && e.status === 404 ? t('a_notFoundAny') : e instanceof ApiError && e.status === 403 ? t('forbidden') : t('a_loadFailed', e?.message ?? String(e))
  return html`<p class="outcome error" role="alert" data-error-code=${code}>${text}</p>`
}

/** Runs an action for a form: the outcome is set from its result or its refusal; a 401 is the app's (log-in again). */
export async function attempt (setOutcome, work, okText) {
  setOutcome(null)
  try {
    const r = await work()
    setOutcome({ ok: okText(r) })
    return r
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) setOutcome({ error: err })
    return undefined
  }
}

export function when (ms) {
  return ms === null || ms === undefined || ms === 0 ? t('a_none') : new Date(Number(ms)).toLocaleString(document.documentElement.lang === 'nl' ? 'nl-NL' : 'en-GB', { dateStyle: 'short', timeStyle: 'medium' })
}

export const enc = encodeURIComponent

/** A wide table's own scrolling region: focusable and named, so it scrolls from the keyboard too. */
export function Scroll ({ label, children }) {
  return html`<div class="scroll" tabindex="0" role="region" aria-label=${label}>${children}</div>`
}
