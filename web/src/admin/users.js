// #/admin/users: the organisation's personal accounts and their roles; create one with a role
// and an initial password (the node keeps only its slow hash).
import { html } from 'htm/preact'
import { useEffect, useState } from 'preact/hooks'
import { call, get } from '../api.js'
import { t } from '../i18n.js'
import { attempt, Outcome, ROLES, when } from './util.js'

export function AdminUsers ({ onError }) {
  const [users, setUsers] = useState(null)
  const [f, setF] = useState({ user: '', role: 'clinician', password: '' })
  const [outcome, setOutcome] = useState(null)
  const reload = () => get('/api/tenant/users').then(setUsers, onError)
  useEffect(() => { void reload() }, [])
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value })
  const submit = async (e) => {
    e.preventDefault()
    const r = await attempt(setOutcome, () => call('POST', '/api/tenant/users', { user: f.user.trim(), role: f.role, password: f.password }), (p) => t('a_created', p.user))
    if (r !== undefined) { setF({ user: '', role: f.role, password: '' }); void reload() }
  }
  return html`
    <main class="admin">
      <h1>${t('a_users')}</h1>
      ${users === null ? html`<p role="status">${t('loading')}</p>` : users.length === 0 ? html`<p>${t('a_noUsers')}</p>` : html`
        <table class="users">
          <thead><tr><th scope="col">${t('a_userId')}</th><th scope="col">${t('a_role')}</th><th scope="col">${t('a_recordedAt')}</th></tr></thead>
          <tbody>${users.map((u) => html`<tr data-user=${u.user} data-role=${u.role}><td class="id">${u.user}</td><td>${t(`a_role_${u.role}`)}</td><td>${when(u.updatedAtMs)}</td></tr>`)}</tbody>
        </table>`}
      <form class="admin-form" onSubmit=${submit}>
        <h2>${t('a_createUser')}</h2>
        <div class="fields">
          <div><label for="u-user">${t('a_userId')}</label><input id="u-user" class="id" required value=${f.user} autocomplete="off" spellcheck="false" onInput=${set('user')} /></div>
          <div><label for="u-role">${t('a_role')}</label>
            <select id="u-role" value=${f.role} onChange=${set('role')}>${ROLES.map((r) => html`<option value=${r}>${t(`a_role_${r}`)}</option>`)}</select></div>
          <div><label for="u-password">${t('a_initialPassword')}</label><input id="u-password" type="password" required minlength="12" maxlength="200" autocomplete="new-password" value=${f.password} onInput=${set('password')} /></div>
        </div>
        <button type="submit" class="primary">${t('a_create')}</button>
        <${Outcome} outcome=${outcome} />
      </form>
    </main>`
}
