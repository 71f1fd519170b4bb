/**
 * Tenants, patients (pseudonymous ids only), devices with their payload keys
 * and current patient, persisted in ClickHouse and held in memory for the hot
 * path. Consent events go through here (the patient must be known) to the
 * consent log (consent-log.ts).
 */
import { importPatients, type PatientImportItem, type PatientImportResult } from './patient-import.ts'
import { randomBytes, X509Certificate } from 'node:crypto'
import { prepareKey, wrapKey } from '../crypto/index.ts'
import type { ConsentEvent, ConsentIndex } from '../consent/index.ts'
import { deviceId, newDeviceId, patientId, tenantId, type DeviceId, type PatientId, type TenantId } from '../ids.ts'
import { insertRows, selectRows, type StorageConnection } from '../storage/index.ts'
import { devicePepper, deviceSecretHash, isKeyedHash, newSecret, verifyDeviceSecret, verifySecret } from './secrets.ts'
import type { Hasher } from './hasher.ts'
import type { CertificateAuthorities } from './certificates.ts'
import { patientAt } from './bindings.ts'
import { loadDevices } from './load-devices.ts'
import { appendConsent, consentRow, loadConsentLog, type ConsentInput } from './consent-log.ts'
import { VitalflowError } from '../errors.ts'

import { FAMILIES, type Family } from './families.ts'
import { planImport, type ImportItem } from './device-import.ts'
import type { DeviceRecord, Enrollment, ImportResult, Replication } from './types.ts'

export { FAMILIES, type Family }
export type { DeviceKey, DeviceRecord, Enrollment, ImportResult } from './types.ts'

export class RegistryError extends VitalflowError<'ING_ERR_NOT_FOUND' | 'ING_ERR_CONFLICT' | 'ING_ERR_INVALID'> {}

export interface RegistryOptions extends Replication {
  masterKey: Uint8Array
  consent: ConsentIndex
  /** Computes every secret hash (worker threads, bounded). */
  hasher: Hasher
  /** Tenant CAs for device client certificates (mutual TLS); optional. */
  cas?: CertificateAuthorities
  /** Called after a tenant is created (e.g. to trust its CA on the mutual-TLS listener). */
  onTenant?: (tenant: TenantId) => void
  /** Called when a device is revoked (to disconnect it). */
  onRevoke?: (d: DeviceRecord) => void
  /** Called after a client certificate is issued, with when it expires (the fleet view). */
  onCertificate?: (tenant: TenantId, device: DeviceId, notAfterMs: number) => void
}

export class Registry {
  private readonly tenantNames = new Map<TenantId, string>()
  private readonly tenantMinAge = new Map<TenantId, number>()
  private readonly patients = new Set<string>()
  /** tenant\0patient → birth date (YYYY-MM-DD), only where the controller gave one, for the minimum-age rule. */
  private readonly birthDates = new Map<string, string>()
  private readonly devices = new Map<DeviceId, DeviceRecord>()
  /** Device ids whose enrolment is under way (between the check and the insert): a second enrolment of the same id is a conflict. */
  private readonly enrolling = new Set<DeviceId>()
  /** Key of the device-secret MACs (from the master key). */
  private readonly pepper: Buffer

  private constructor (private readonly conn: StorageConnection, private readonly opts: RegistryOptions) {
    this.pepper = devicePepper(opts.masterKey)
  }

  static async load (conn: StorageConnection, opts: RegistryOptions): Promise<Registry> {
    const r = new Registry(conn, opts)
    await r.reload()
    return r
  }

  async reload (): Promise<void> {
    const t = this.conn.table
    for (const row of await selectRows<{ tenant_id: string; display_name: string; min_age: number }>(this.conn, `SELECT tenant_id, display_name, min_age FROM ${t('tenants')} FINAL`)) {
      this.tenantNames.set(row.tenant_id as TenantId, row.display_name)
      this.tenantMinAge.set(row.tenant_id as TenantId, Number(row.min_age))
    }
    for (const row of await selectRows<{ tenant_id: string; patient_id: string; birth_date: string | null }>(this.conn, `SELECT tenant_id, patient_id, birth_date FROM ${t('patients')} FINAL`)) {
      this.patients.add(`${row.tenant_id}\0${row.patient_id}`)
      if (row.birth_date !== null) this.setBirthDate(row.tenant_id as TenantId, row.patient_id, row.birth_date)
    }
    for (const d of await loadDevices(this.conn, this.opts.masterKey)) { const had = this.devices.get(d.device); if (had === undefined) this.devices.set(d.device, d); else Object.assign(had, d) }
    await loadConsentLog(this.conn, this.opts.consent)
  }

  private async insert (table: string, row: Record<string, unknown>): Promise<void> {
    await this.insertMany(table, [row])
  }

  private async insertMany (table: string, rows: Array<Record<string, unknown>>): Promise<void> {
    if (rows.length > 0) { await insertRows(this.conn, table, rows); await this.opts.replicate?.(table, rows) }
  }

  hasTenant (tenant: string): boolean { return this.tenantNames.has(tenant as TenantId) }
  hasPatient (tenant: string, patient: string): boolean { return this.patients.has(`${tenant}\0${patient}`) }
  device (id: string): DeviceRecord | undefined { return this.devices.get(id as DeviceId) }
  listTenants (): Array<{ tenant: TenantId; displayName: string }> {
    return [...this.tenantNames].map(([tenant, displayName]) => ({ tenant, displayName }))
  }

  listPatients (tenant: string): string[] {
    const prefix = `${tenant}\0`
    return [...this.patients].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length))
  }

  listDevices (tenant: string): DeviceRecord[] {
    return [...this.devices.values()].filter((d) => d.tenant === tenant)
  }

  /** Creates a tenant (or changes its name or minimum age); idempotent for the same values. */
  async createTenant (id: string, displayName: string, minAge = this.tenantMinAge.get(id as TenantId) ?? 16): Promise<TenantId> {
    const tenant = tenantId(id)
    if (displayName.length > 200) throw new RegistryError('ING_ERR_INVALID', 'display name longer than 200 characters')
    if (!Number.isInteger(minAge) || minAge < 0 || minAge > 25) throw new RegistryError('ING_ERR_INVALID', 'minimum age must be a whole number of years from 0 to 25')
    if (this.tenantNames.get(tenant) === displayName && this.tenantMinAge.get(tenant) === minAge) return tenant
    await this.insert('tenants', { tenant_id: tenant, display_name: displayName, min_age: minAge, created_at: Date.now() })
    const isNew = !this.tenantNames.has(tenant)
    this.tenantNames.set(tenant, displayName)
    this.tenantMinAge.set(tenant, minAge)
    for (const [k, birth] of this.birthDates) if (k.startsWith(`${tenant}\0`)) this.setBirthDate(tenant, k.slice(tenant.length + 1), birth)
    if (isNew) {
      this.opts.cas?.ensure(tenant)
      this.opts.onTenant?.(tenant)
    }
    return tenant
  }

  /**
   * Registers a pseudonymous patient id under a tenant; idempotent. A birth
   * date (YYYY-MM-DD), when the controller gives one, only serves the
   * minimum-age rule: below the tenant's minimum age, consent-based data
   * needs a guardian's grant.
   */
  async createPatient (tenantRaw: string, patientRaw: string, birthDate?: string): Promise<PatientId> {
    const tenant = this.requireTenant(tenantRaw)
    const patient = patientId(patientRaw)
    if (birthDate !== undefined && (!/^\d{4}-\d{2}-\d{2}$/.test(birthDate) || Number.isNaN(Date.parse(`${birthDate}T00:00:00Z`)) || Date.parse(`${birthDate}T00:00:00Z`) > Date.now())) {
      throw new RegistryError('ING_ERR_INVALID', 'birth date must be a past date as YYYY-MM-DD')
    }
    const k = `${tenant}\0${patient}`
    if (this.hasPatient(tenant, patient) && this.birthDates.get(k) === birthDate) return patient
    await this.insert('patients', { tenant_id: tenant, patient_id: patient, birth_date: birthDate ?? null, created_at: Date.now() })
    this.patients.add(k)
    if (birthDate !== undefined) this.setBirthDate(tenant, patient, birthDate)
    return patient
  }

  /** Registers many patients with their consent grants in two inserts (patient-import.ts). */
  async importPatients (tenant: string, items: PatientImportItem[], by: { recordedBy: string; source: string }): Promise<PatientImportResult> {
    const t = this.requireTenant(tenant)
    return await importPatients({
      conn: this.conn, consent: this.opts.consent, tenant: t, has: (p) => this.hasPatient(t, p), note: (ps) => { for (const p of ps) this.patients.add(`${t}\0${p}`) },
      replicate: this.opts.replicate,
    }, items, by)
  }

  private setBirthDate (tenant: TenantId, patient: string, birthDate: string): void {
    this.birthDates.set(`${tenant}\0${patient}`, birthDate)
    const adult = new Date(`${birthDate}T00:00:00Z`)
    adult.setUTCFullYear(adult.getUTCFullYear() + (this.tenantMinAge.get(tenant) ?? 16))
    this.opts.consent.setMinorUntil(tenant, patient, adult.getTime())
  }

  /**
   * Forgets a patient after erasure: unbinds their devices from now on, maps
   * their past bindings to nobody (so late data of that time is stored under
   * no patient), drops their consent state. The rows themselves are removed
   * by the erasure.
   */
  async forgetPatient (tenantRaw: string, patientRaw: string): Promise<void> {
    const tenant = this.requireTenant(tenantRaw)
    const patient = patientId(patientRaw)
    for (const d of this.devices.values()) {
      if (d.tenant !== tenant || !d.bindings.some((b) => b.patient === patient)) continue
      if (d.patient === patient) await this.bindDevice(tenant, d.device, null, Math.max(Date.now(), (d.bindings.at(-1)?.fromMs ?? 0) + 1))
      d.bindings = d.bindings.map((b) => b.patient === patient ? { ...b, patient: null } : b)
    }
    this.patients.delete(`${tenant}\0${patient}`)
    this.birthDates.delete(`${tenant}\0${patient}`)
    this.opts.consent.forget(tenant, patient)
  }

  tenantName (tenant: string): string | undefined { return this.tenantNames.get(tenant as TenantId) }

  /**
   * Enrols a file of devices (see device-import.ts): every line is checked first and a file with
   * any bad line changes nothing; then one insert per table for all of them. Returns the one-time
   * secrets and keys of the devices it enrolled, and the lines that were already enrolled so.
   */
  async importDevices (tenantRaw: string, items: ImportItem[]): Promise<ImportResult> {
    const tenant = this.requireTenant(tenantRaw)
    const plan = planImport(tenant, items, {
      hasPatient: (t, p) => this.hasPatient(t, p),
      device: (id) => this.devices.get(id as DeviceId),
      enrolling: (id) => this.enrolling.has(id as DeviceId),
    })
    if (plan.errors.length > 0) return { applied: false, enrolled: [], unchanged: plan.unchanged.map((i) => ({ line: i.line, device: i.device })), errors: plan.errors }
    for (const it of plan.enrol) this.enrolling.add(it.device as DeviceId)
    try {
      const enrolled = await this.enrolMany(tenant, plan.enrol.map((it) => ({ device: it.device as DeviceId, family: it.family, patient: it.patient as PatientId | null, gateway: it.gateway as DeviceId | null })))
      return {
        applied: true,
        enrolled: enrolled.map((e, i) => ({ ...e, line: plan.enrol[i]!.line })),
        unchanged: plan.unchanged.map((i) => ({ line: i.line, device: i.device })),
        errors: [],
      }
    } finally {
      for (const it of plan.enrol) this.enrolling.delete(it.device as DeviceId)
    }
  }

  /** Enrolls a new device: issues its secret and first payload key, binds it to a patient (or none). */
  async enrollDevice (input: { tenant: string; device: string; family: Family; patient?: string | null; gateway?: string | null }): Promise<Enrollment> {
    const tenant = this.requireTenant(input.tenant)
    const device = newDeviceId(input.device)
    if (!FAMILIES.includes(input.family)) throw new RegistryError('ING_ERR_INVALID', `family must be one of ${FAMILIES.join(', ')}`)
    if (this.devices.has(device) || this.enrolling.has(device)) throw new RegistryError('ING_ERR_CONFLICT', 'device id already enrolled')
    const patient = input.patient == null ? null : patientId(input.patient)
    if (patient !== null && !this.hasPatient(tenant, patient)) throw new RegistryError('ING_ERR_NOT_FOUND', 'patient not registered with this tenant')
    const gateway = input.gateway == null ? null : this.requireGateway(tenant, input.gateway)
    this.enrolling.add(device)
    try {
      return (await this.enrolMany(tenant, [{ device, family: input.family, patient, gateway }]))[0]!
    } finally {
      this.enrolling.delete(device)
    }
  }

  /** Issues each device its secret and first payload key, in one insert per table, then holds them in memory. */
  private async enrolMany (tenant: TenantId, specs: Array<{ device: DeviceId; family: Family; patient: PatientId | null; gateway: DeviceId | null }>): Promise<Enrollment[]> {
    const now = Date.now()
    const made = specs.map((spec) => {
      const secret = newSecret()
      return { ...spec, secret, key: randomBytes(32), secretHash: deviceSecretHash(this.pepper, spec.device, secret) }
    })
    await this.insertMany('device_keys', made.map((m) => ({
      tenant_id: tenant, device_id: m.device, key_id: 1, wrapped_key: wrapKey(this.opts.masterKey, tenant, m.device, 1, m.key), created_at: now,
    })))
    // the first binding covers the device's earlier data too (a backlog synced after enrollment)
    await this.insertMany('device_bindings', made.map((m) => ({ tenant_id: tenant, device_id: m.device, patient_id: m.patient ?? '', valid_from: 0, recorded_at: now })))
    await this.insertMany('devices', made.map((m) => ({
      tenant_id: tenant, device_id: m.device, family: m.family, patient_id: m.patient ?? '', secret_hash: m.secretHash, gateway_id: m.gateway ?? '', updated_at: now,
    })))
    return made.map((m) => {
      this.devices.set(m.device, {
        tenant, device: m.device, family: m.family, patient: m.patient, bindings: [{ fromMs: 0, patient: m.patient }], gateway: m.gateway, secretHash: m.secretHash, revokedAtMs: null,
        keys: new Map([[1, { aead: prepareKey(m.key), notAfterMs: null }]]),
      })
      return { tenant, device: m.device, family: m.family, patient: m.patient, secret: m.secret, keyId: 1, key: m.key.toString('base64url') }
    })
  }

  /**
   * Issues a new payload key. The current key keeps working for `overlapMs`, so
   * messages the device sealed (or queued) before it switched still open; after
   * that it is refused. Returns the new key, once.
   */
  async rotateKey (tenantRaw: string, deviceRaw: string, overlapMs: number): Promise<{ keyId: number; key: string; previousValidUntilMs: number }> {
    const d = this.requireDevice(tenantRaw, deviceRaw)
    const tenant = d.tenant
    if (!Number.isInteger(overlapMs) || overlapMs < 0 || overlapMs > 30 * 86_400_000) throw new RegistryError('ING_ERR_INVALID', 'overlap must be 0..30 days')
    const now = Date.now()
    const until = now + overlapMs
    const keyId = Math.max(0, ...d.keys.keys()) + 1
    const key = randomBytes(32)
    await this.insert('device_keys', { tenant_id: tenant, device_id: d.device, key_id: keyId, wrapped_key: wrapKey(this.opts.masterKey, tenant, d.device, keyId, key), created_at: now })
    for (const [id, k] of d.keys) {
      if (k.notAfterMs !== null && k.notAfterMs <= until) continue
      // re-insert the retired key's row with its end of validity (ReplacingMergeTree keeps the newest)
      const [row] = await selectRows<{ wrapped_key: string }>(this.conn, `SELECT wrapped_key FROM ${this.conn.table('device_keys')} FINAL
        WHERE tenant_id = {tenant:String} AND device_id = {device:String} AND key_id = {id:UInt32}`, { tenant, device: d.device, id })
      await this.insert('device_keys', { tenant_id: tenant, device_id: d.device, key_id: id, wrapped_key: row!.wrapped_key, created_at: now + 1, not_after: until })
      k.notAfterMs = until
    }
    d.keys.set(keyId, { aead: prepareKey(key), notAfterMs: null })
    return { keyId, key: key.toString('base64url'), previousValidUntilMs: until }
  }

  /**
   * Binds a device to another patient (or to nobody) from `validFromMs` on; data
   * with an earlier time stays attributed to the earlier binding. History is
   * append-only: a binding cannot start before the current one.
   */
  async bindDevice (tenantRaw: string, deviceRaw: string, patientRaw: string | null, validFromMs = Date.now()): Promise<void> {
    const d = this.requireDevice(tenantRaw, deviceRaw)
    const patient = patientRaw === null ? null : patientId(patientRaw)
    if (patient !== null && !this.hasPatient(d.tenant, patient)) throw new RegistryError('ING_ERR_NOT_FOUND', 'patient not registered with this tenant')
    const last = d.bindings[d.bindings.length - 1]
    if (!Number.isSafeInteger(validFromMs) || (last !== undefined && validFromMs <= last.fromMs)) {
      throw new RegistryError('ING_ERR_INVALID', 'a new binding must start after the current one')
    }
    await this.insert('device_bindings', { tenant_id: d.tenant, device_id: d.device, patient_id: patient ?? '', valid_from: validFromMs, recorded_at: Date.now() })
    await this.persistDevice(d, { patient_id: patient ?? '' })
    d.bindings.push({ fromMs: validFromMs, patient })
    d.patient = patient
  }

  /** Lets a gateway phone of the same tenant publish on this device's behalf (null: no gateway). */
  async setGateway (tenantRaw: string, deviceRaw: string, gatewayRaw: string | null): Promise<void> {
    const d = this.requireDevice(tenantRaw, deviceRaw)
    const gateway = gatewayRaw === null ? null : this.requireGateway(d.tenant, gatewayRaw)
    await this.persistDevice(d, { gateway_id: gateway ?? '' })
    d.gateway = gateway
  }

  /** The patient a device's data of time t belongs to. */
  patientAt (d: DeviceRecord, t: number): PatientId | null {
    return d.bindings.length === 1 ? d.bindings[0]!.patient : patientAt(d.bindings, t)
  }

  private async persistDevice (d: DeviceRecord, change: Record<string, unknown>): Promise<void> {
    await this.insert('devices', {
      tenant_id: d.tenant, device_id: d.device, family: d.family, patient_id: d.patient ?? '', secret_hash: d.secretHash, revoked_at: d.revokedAtMs,
      gateway_id: d.gateway ?? '', updated_at: Date.now(), ...change,
    })
  }

  private requireDevice (tenantRaw: string, deviceRaw: string): DeviceRecord {
    const tenant = this.requireTenant(tenantRaw)
    const d = this.devices.get(deviceId(deviceRaw))
    if (d === undefined || d.tenant !== tenant) throw new RegistryError('ING_ERR_NOT_FOUND', 'unknown device')
    return d
  }

  private requireGateway (tenant: TenantId, raw: string): DeviceId {
    const g = this.devices.get(deviceId(raw))
    if (g === undefined || g.tenant !== tenant || g.family !== 'gateway') throw new RegistryError('ING_ERR_NOT_FOUND', 'no gateway with that id in this tenant')
    return g.device
  }

  /**
   * Revokes a device (lost bracelet, stolen phone): from now on its secret and certificates are
   * refused at CONNECT, and any message of it (or through it, for a gateway) still in flight is
   * refused; `onRevoke` disconnects it on every listener. Idempotent; there is no un-revoke (enrol
   * a replacement under a new id).
   */
  async revokeDevice (tenantRaw: string, deviceRaw: string): Promise<{ device: DeviceId; revokedAtMs: number }> {
    const d = this.requireDevice(tenantRaw, deviceRaw)
    if (d.revokedAtMs === null) {
      // refused in memory first: a message arriving while the row is written is already refused
      d.revokedAtMs = Date.now()
      await this.persistDevice(d, {})
      // its certificates on the tenant CA's revocation list: refused at the TLS handshake too
      await this.opts.cas?.revoke(d.tenant, d.device)
    }
    this.opts.onRevoke?.(d)
    return { device: d.device, revokedAtMs: d.revokedAtMs }
  }

  /** Issues a client certificate (CN = device, O = tenant) signed by the tenant's CA. */
  async issueCertificate (tenantRaw: string, deviceRaw: string, csrPem?: string): Promise<{ certPem: string; keyPem?: string; caPem: string }> {
    const d = this.requireDevice(tenantRaw, deviceRaw)
    const tenant = d.tenant
    if (this.opts.cas === undefined) throw new RegistryError('ING_ERR_INVALID', 'no certificate authority configured')
    const issued = await this.opts.cas.issue(tenant, d.device, csrPem)
    this.opts.onCertificate?.(tenant, d.device, Date.parse(new X509Certificate(issued.certPem).validTo))
    return { ...issued, caPem: this.opts.cas.ensure(tenant).certPem }
  }

  /** The device a verified client certificate speaks for, if it is enrolled under the tenant the certificate names. */
  deviceForCertificate (peer: X509Certificate): DeviceRecord | null {
    const id = this.opts.cas?.identify(peer)
    if (id == null) return null
    const d = this.devices.get(id.device as DeviceId)
    return d !== undefined && d.tenant === id.tenant && d.revokedAtMs === null ? d : null
  }

  /**
   * Checks a device's secret: a keyed hash, microseconds on this thread. An unknown device costs the
   * same MAC as a known one. A secret still stored as scrypt (enrolled by an earlier version) is
   * checked on the hash threads — rejecting with HasherBusyError (ING_ERR_AUTH_BUSY) when too many
   * checks wait — and on success replaced by its keyed hash, so each device pays that once.
   */
  async authenticate (device: string, secret: string): Promise<DeviceRecord | null> {
    const d = this.devices.get(device as DeviceId)
    if (d === undefined || isKeyedHash(d.secretHash)) {
      const ok = verifyDeviceSecret(this.pepper, device, secret, d?.secretHash ?? '')
      // a revoked device costs the same check and gets the same answer as a wrong secret
      return ok && d !== undefined && d.revokedAtMs === null ? d : null
    }
    if (!await verifySecret(this.opts.hasher, secret, d.secretHash) || d.revokedAtMs !== null) return null
    const keyed = deviceSecretHash(this.pepper, d.device, secret)
    await this.persistDevice(d, { secret_hash: keyed })
    d.secretHash = keyed
    this.secretsMigrated++
    return d
  }

  /** Device secrets moved from scrypt to the keyed hash since start. */
  secretsMigrated = 0

  /** Appends a consent event to the log and applies it to the in-memory index. */
  async recordConsent (input: ConsentInput): Promise<ConsentEvent> {
    const tenant = this.requireTenant(input.tenant)
    const patient = patientId(input.patient)
    if (!this.hasPatient(tenant, patient)) throw new RegistryError('ING_ERR_NOT_FOUND', 'patient not registered with this tenant')
    const now = Date.now()
    const validFromMs = input.action === 'grant' ? input.validFromMs ?? now : now
    if (!Number.isSafeInteger(validFromMs) || validFromMs > now) throw new RegistryError('ING_ERR_INVALID', 'a consent cannot be valid from a time in the future')
    return await appendConsent(this.conn, this.opts.consent, tenant, patient, input, now, validFromMs).then(async (e) => { await this.opts.replicate?.('consent_events', [consentRow(e)]); return e })
  }

  private requireTenant (raw: string): TenantId {
    const tenant = tenantId(raw)
    if (!this.tenantNames.has(tenant)) throw new RegistryError('ING_ERR_NOT_FOUND', 'unknown tenant')
    return tenant
  }
}
