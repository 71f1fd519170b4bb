import { html } from 'htm/preact'
import { useState } from 'preact/hooks'
import { ApiError, logIn } from './api.js'
import { has, t, wait } from './i18n.js'

/** The API's refusal as a sentence in the UI's language, keyed by the API's stable error code. */
function refusal (err) {
  if (!(err instanceof ApiError)) return { code: 'network', text: t('network') }
  if (has(err.code)) return { code: err.code, text: t(err.code, wait(err.retryAfter)) }
  return { code: err.code, text: t('failed', err.message) }
}

/** @param {{ expired: boolean, onLoggedIn: () => void }} props */
export function Login ({ expired, onLoggedIn }) {
  const [tenant, setTenant] = useState(localStorage.getItem('vf.tenant') ?? '')
  const [user, setUser] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(null)

  const submit = async (e) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await logIn(tenant.trim(), user.trim(), password)
      localStorage.setItem('vf.tenant', tenant.trim())
      setPassword('')
      onLoggedIn()
    } catch (err) {
      setError(refusal(err))
      setBusy(false)
    }
  }

  return html`
    <main class="login">
      <form onSubmit=${submit} aria-labelledby="login-title">
        <h1 id="login-title">${t('loginTitle')}</h1>
        ${expired && error === null ? html`<p class="notice" role="status">${t('sessionEnded')}</p>` : null}
        <label for="tenant">${t('tenant')}</label>
        <input id="tenant" name="tenant" autocomplete="organization" value=${tenant} onInput=${(e) => setTenant(e.currentTarget.value)} />
        <label for="user">${t('user')}</label>
        <input id="user" name="user" autocomplete="username" required value=${user} onInput=${(e) => setUser(e.currentTarget.value)} />
        <label for="password">${t('password')}</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} />
        ${error === null ? null : html`<p class="error" role="alert" data-error-code=${error.code}>${error.text}</p>`}
        <button type="submit" disabled=${busy}>${busy ? t('loggingIn') : t('logIn')}</button>
      </form>
    </main>`
}
