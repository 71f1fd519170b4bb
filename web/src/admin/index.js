// The tenant administrator's screens (#/admin/...): patients with consent and rights, devices,
// users and retention. Hash routes keep every id out of request lines; each screen reads and
// writes through the tenant_admin routes of /api with the session's token.
import './strings.js'
import './admin.css'
import { html } from 'htm/preact'
import { t } from '../i18n.js'
import { AdminDevices } from './devices.js'
import { AdminPatient } from './patient.js'
import { AdminPatients } from './patients.js'
import { AdminRetention } from './retention.js'
import { AdminUsers } from './users.js'

const SCREENS = [['patients', '#/admin', 'a_patients'], ['devices', '#/admin/devices', 'a_devices'], ['users', '#/admin/users', 'a_users'], ['retention', '#/admin/retention', 'a_retention']]

/** The admin screen of the hash's parts after "admin". */
export function adminRoute (parts) {
  if (parts[0] === 'patients' && parts[1] !== undefined && parts[1] !== '') return { screen: 'patient', patient: parts[1] }
  if (['devices', 'users', 'retention'].includes(parts[0])) return { screen: parts[0] }
  return { screen: 'patients' }
}

export function Admin ({ where, onError }) {
  const current = where.screen === 'patient' ? 'patients' : where.screen
  return html`
    <nav class="subnav" aria-label=${t('a_nav')}>
      ${SCREENS.map(([key, href, label]) => html`<a href=${href} aria-current=${key === current ? 'page' : null}>${t(label)}</a>`)}
    </nav>
    ${where.screen === 'patient' ? html`<${AdminPatient} key=${where.patient} patient=${where.patient} onError=${onError} />`
      : where.screen === 'devices' ? html`<${AdminDevices} onError=${onError} />`
        : where.screen === 'users' ? html`<${AdminUsers} onError=${onError} />`
          : where.screen === 'retention' ? html`<${AdminRetention} onError=${onError} />`
            : html`<${AdminPatients} onError=${onError} />`}`
}
