// The care web app: log-in, patient list, patient page, alarm board. Hash routes (#/patients/p1)
// keep ids out of request lines and server logs; every read goes through /api with the session.
import 'uplot/dist/uPlot.min.css'
import './app.css'
import { html } from 'htm/preact'
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiError, loggedIn, logOut, role, whenExpired } from './api.js'
import { Admin, adminRoute } from './admin/index.js'
import { Alarms } from './alarms.js'
import { language, setLanguage, t } from './i18n.js'
import { Login } from './login.js'
import { Patient } from './patient.js'
import { Patients } from './patients.js'

function route () {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map((p) => decodeURIComponent(p))
  if (parts[0] === 'patients' && parts[1] !== undefined && parts[1] !== '') return { page: 'patient', patient: parts[1], range: parts[2] }
  if (parts[0] === 'patients') return { page: 'patients' }
  if (parts[0] === 'alarms') return { page: 'alarms' }
  if (parts[0] === 'admin') return { page: 'admin', admin: adminRoute(parts.slice(1)) }
  return { page: 'home' }
}

/** Whether this session may read the patient list (clinicians, tenant administrators) or only alarms (responders). */
function App () {
  const [where, setWhere] = useState(route())
  const [session, setSession] = useState(null) // { patients: boolean } once logged in
  const [expired, setExpired] = useState(false)
  const [error, setError] = useState(null)
  const [, setLang] = useState(language())

  useEffect(() => {
    const onHash = () => { setWhere(route()); setError(null) }
    window.addEventListener('hashchange', onHash)
    whenExpired(() => { setSession(null); setExpired(true) })
    return () => window.removeEventListener('hashchange', onHash)
  }, [])

  useEffect(() => { document.title = t('app') })

  const onError = (err) => { if (!(err instanceof ApiError && err.status === 401)) setError(err instanceof ApiError && err.status === 403 ? t('forbidden') : t('failed', err.message)) }

  const onLoggedIn = async () => {
    setExpired(false)
    try {
      // the screens a role is offered; every call is still checked by the API
      const patients = ['tenant_admin', 'clinician'].includes(role())
      setSession({ patients, admin: role() === 'tenant_admin' })
      // back to the page the user was on when the session ended; else their start page
      if (route().page === 'home') location.hash = patients ? '#/patients' : '#/alarms'
      setWhere(route())
    } catch (err) { onError(err) }
  }

  const toggle = () => { setLanguage(language() === 'nl' ? 'en' : 'nl'); setLang(language()) }
  const langButton = html`<button type="button" class="lang" lang=${language() === 'nl' ? 'en' : 'nl'} title=${t('languageLabel')} onClick=${toggle}>${t('language')}</button>`

  if (session === null || !loggedIn()) {
    return html`<header class="bar"><span class="brand">${t('app')}</span>${langButton}</header>
      <${Login} expired=${expired} onLoggedIn=${onLoggedIn} />`
  }

  const page = where.page === 'home' ? (session.patients ? 'patients' : 'alarms') : where.page
  return html`
    <header class="bar">
      <span class="brand">${t('app')}</span>
      <nav aria-label="main">
        ${session.patients ? html`<a href="#/patients" aria-current=${page === 'patients' || page === 'patient' ? 'page' : null}>${t('patients')}</a>` : null}
        <a href="#/alarms" aria-current=${page === 'alarms' ? 'page' : null}>${t('alarms')}</a>
        ${session.admin ? html`<a href="#/admin" aria-current=${page === 'admin' ? 'page' : null}>${t('a_nav')}</a>` : null}
      </nav>
      ${langButton}
      <button type="button" onClick=${async () => { await logOut(); setSession(null); location.hash = '' }}>${t('logOut')}</button>
    </header>
    ${error === null ? null : html`<p class="error banner" role="alert">${error}</p>`}
    ${page === 'patients' && session.patients ? html`<${Patients} onError=${onError} />`
      : page === 'patient' && session.patients ? html`<${Patient} key=${where.patient} patient=${where.patient} range=${where.range} onError=${onError} />`
        : page === 'alarms' ? html`<${Alarms} onError=${onError} />`
          : page === 'admin' && session.admin ? html`<${Admin} where=${where.admin} onError=${onError} />`
            : html`<main><p role="alert">${t('forbidden')}</p></main>`}`
}

render(html`<${App} />`, document.getElementById('app'))
