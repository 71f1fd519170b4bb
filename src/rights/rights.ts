/**
 * Data-subject rights as working functions (privacy-requirements.md, "Data-subject
 * rights"): access report, erasure with a receipt, legal hold, restriction,
 * rectification, retention per tenant, the register of processing, and the
 * access audit (NEN 7513). The HTTP API and the admin CLI call these; the
 * export lives in export.ts.
 *
 * Erasure lives in erasure.ts: every MergeTree table with a patient_id column,
 * the logs the law makes us keep pseudonymised under the receipt's subject
 * hash, and nothing of the subject left on disk once it is purged.
 */
import { createHash } from 'node:crypto'
import {
  CATEGORIES, RETENTION_TABLES, registerOfProcessing, retentionTtls,
  type Category, type ConsentIndex, type Policy, type ProcessingActivity,
} from '../consent/index.ts'
import { SPOT_COLUMNS } from '../catalogue/index.ts'
import type { Registry } from '../registry/index.ts'
import type { Storage } from '../storage/index.ts'
import { CATEGORY_ROWS, Eraser, type ErasureOptions, type ErasureReceipt } from './erasure.ts'
import { VitalflowError } from '../errors.ts'

export type { ErasureReceipt } from './erasure.ts'

export class RightsError extends VitalflowError<'ING_ERR_HELD' | 'ING_ERR_INVALID' | 'ING_ERR_NOT_FOUND'> {}

/** Who asks: every rights call is logged in the access log under this. */
export interface Actor { user: string; role: string; remoteAddress?: string | undefined }

/** Values a professional may rectify: table.column → the row key columns. */
const RECTIFIABLE: Readonly<Record<string, { table: string; column: string; byIdx: boolean }>> = {
  'vital_samples.value': { table: 'vital_samples', column: 'value', byIdx: true },
  ...Object.fromEntries(SPOT_COLUMNS.map((c) =>
    [`spot_measurements.${c}`, { table: 'spot_measurements', column: c, byIdx: false }])),
}
export const RECTIFIABLE_TARGETS = Object.keys(RECTIFIABLE)

const TELEMETRY: ReadonlyArray<{ table: string; category: string }> = [
  { table: 'vital_samples', category: 'category' },
  { table: 'spot_measurements', category: "'spot_measurements'" },
  { table: 'alarm_events', category: "if(latitude IS NULL, 'alarm_events', 'alarm_events+location')" },
  { table: 'device_status', category: "'device_diagnostics'" },
]

const SYNC = { mutations_sync: '2' } as const

/** The two per-patient flags kept as event logs. */
const FLAGS = {
  hold: { table: 'legal_holds', on: 'hold', audit: 'legal_hold' },
  restriction: { table: 'restrictions', on: 'restrict', audit: 'restriction' },
} as const

export interface RightsOptions { storage: Storage; registry: Registry; consent: ConsentIndex; policy: Policy; erasure?: ErasureOptions }

export class Rights {
  private readonly held = new Set<string>()
  private readonly restricted = new Set<string>()
  private readonly retention = new Map<string, Partial<Record<Category, number>>>()
  private readonly conn: Storage['conn']
  private readonly eraser: Eraser

  private constructor (private readonly opts: RightsOptions) {
    this.conn = opts.storage.conn
    this.eraser = new Eraser(opts.storage, opts.registry, opts.erasure)
  }

  static async load (opts: RightsOptions): Promise<Rights> {
    const r = new Rights(opts)
    const t = r.conn.table
    for (const row of await r.rows<{ tenant_id: string; patient_id: string }>(
      `SELECT tenant_id, patient_id FROM ${t('legal_holds')} GROUP BY tenant_id, patient_id HAVING argMax(action, ts) = 'hold'`)) r.held.add(key(row.tenant_id, row.patient_id))
    for (const row of await r.rows<{ tenant_id: string; patient_id: string }>(
      `SELECT tenant_id, patient_id FROM ${t('restrictions')} GROUP BY tenant_id, patient_id HAVING argMax(action, ts) = 'restrict'`)) r.restricted.add(key(row.tenant_id, row.patient_id))
    for (const row of await r.rows<{ tenant_id: string; category: Category; days: number }>(`SELECT tenant_id, category, days FROM ${t('tenant_retention')} FINAL`)) {
      r.retention.set(row.tenant_id, { ...r.retention.get(row.tenant_id), [row.category]: Number(row.days) })
    }
    await r.applyRetention()
    await r.eraser.ensureTableSettings()
    // an erasure interrupted between hiding and purging is purged now
    await r.purgePending()
    return r
  }

  private async rows<T> (query: string, params: Record<string, unknown> = {}): Promise<T[]> {
    return await (await this.conn.client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>()
  }

  private async command (query: string, params: Record<string, unknown> = {}, settings: Record<string, string> = {}): Promise<void> {
    await this.conn.client.command({ query, query_params: params, clickhouse_settings: settings })
  }

  private requirePatient (tenant: string, patient: string): void {
    if (!this.opts.registry.hasPatient(tenant, patient)) throw new RightsError('ING_ERR_NOT_FOUND', 'unknown patient')
  }

  // ---- access audit (NEN 7513) -------------------------------------------------------------

  /** Logs a read of (or an action on) personal data: one row per patient, in one insert. Awaited before the answer goes out. */
  async audit (tenant: string, actor: Actor, patient: string | readonly string[], action: string, detail: string): Promise<void> {
    const patients = typeof patient === 'string' ? [patient] : patient
    if (patients.length === 0) return
    const ts = Date.now()
    await this.conn.client.insert({
      table: this.conn.table('access_log'), format: 'JSONEachRow',
      values: patients.map((p) => ({ tenant_id: tenant, user_id: actor.user, role: actor.role, patient_id: p, action, detail: detail.slice(0, 500), remote_address: actor.remoteAddress ?? '', ts })),
    })
  }

  // ---- legal hold and restriction ----------------------------------------------------------

  isHeld (tenant: string, patient: string): boolean { return this.held.has(key(tenant, patient)) }
  isRestricted (tenant: string, patient: string): boolean { return this.restricted.has(key(tenant, patient)) }

  /** Places or lifts a legal hold: a held patient's data survives erasure requests and retention. */
  async setHold (tenant: string, patient: string, hold: boolean, actor: Actor, reason: string): Promise<void> {
    await this.flag(FLAGS.hold, this.held, tenant, patient, hold, actor, reason)
    await this.applyRetention()
  }

  /** Restricts processing (data kept, hidden from every read but the rights export) or lifts it. */
  async setRestriction (tenant: string, patient: string, restrict: boolean, actor: Actor, reason: string): Promise<void> {
    await this.flag(FLAGS.restriction, this.restricted, tenant, patient, restrict, actor, reason)
  }

  /** Appends a set/lift event to the flag's log, updates the in-memory set and the access log. */
  private async flag (f: (typeof FLAGS)[keyof typeof FLAGS], set: Set<string>, tenant: string, patient: string, on: boolean, actor: Actor, reason: string): Promise<void> {
    this.requirePatient(tenant, patient)
    const why = reason.slice(0, 200)
    await this.conn.client.insert({
      table: this.conn.table(f.table), format: 'JSONEachRow',
      values: [{ tenant_id: tenant, patient_id: patient, action: on ? f.on : 'lift', reason: why, recorded_by: actor.user, ts: Date.now() }],
    })
    if (on) set.add(key(tenant, patient))
    else set.delete(key(tenant, patient))
    await this.audit(tenant, actor, patient, on ? f.audit : `${f.audit}_lift`, why)
  }

  // ---- retention and the register ----------------------------------------------------------

  retentionDays (tenant: string, category: Category): number {
    return this.retention.get(tenant)?.[category] ?? this.opts.policy.retention[category].defaultDays
  }

  async setRetention (tenant: string, category: Category, days: number, actor: Actor): Promise<void> {
    if (!this.opts.registry.hasTenant(tenant)) throw new RightsError('ING_ERR_NOT_FOUND', 'unknown tenant')
    const rule = this.opts.policy.retention[category]
    if (!Number.isInteger(days) || days < rule.minDays || days > rule.maxDays) {
      throw new RightsError('ING_ERR_INVALID', `retention of ${category} must be ${rule.minDays}..${rule.maxDays} days (${rule.source})`)
    }
    await this.conn.client.insert({
      table: this.conn.table('tenant_retention'), format: 'JSONEachRow',
      values: [{ tenant_id: tenant, category, days, recorded_by: actor.user, updated_at: Date.now() }],
    })
    this.retention.set(tenant, { ...this.retention.get(tenant), [category]: days })
    await this.applyRetention()
  }

  /**
   * Writes the TTL of every retention table from the policy, the tenants' choices and the holds.
   * MODIFY TTL makes ClickHouse re-evaluate every part of the table, so a table whose clauses
   * are unchanged since the last write (kept in retention_applied) is left alone.
   */
  async applyRetention (): Promise<void> {
    const holds = [...this.held].map((k) => { const [tenant, patient] = k.split('\0') as [string, string]; return { tenant, patient } })
    const ttls = retentionTtls({ policy: this.opts.policy, overrides: this.retention, holds })
    const applied = new Map((await this.rows<{ table_name: string; ttl: string }>(`SELECT table_name, ttl FROM ${this.conn.table('retention_applied')} FINAL`))
      .map((r) => [r.table_name, r.ttl]))
    for (const table of Object.keys(RETENTION_TABLES)) {
      const ttl = ttls[table]!
      // a digest, not the text: the clauses name held patients, and this table is not erased
      const digest = createHash('sha256').update(ttl).digest('hex')
      if (applied.get(table) === digest) continue
      await this.command(`ALTER TABLE ${this.conn.table(table)} MODIFY TTL ${ttl}`)
      await this.conn.client.insert({ table: this.conn.table('retention_applied'), format: 'JSONEachRow', values: [{ table_name: table, ttl: digest, applied_at: Date.now() }] })
    }
  }

  register (tenant: string): ProcessingActivity[] {
    const name = this.opts.registry.tenantName(tenant)
    if (name === undefined) throw new RightsError('ING_ERR_NOT_FOUND', 'unknown tenant')
    return registerOfProcessing(this.opts.policy, { id: tenant, name }, (c) => this.retentionDays(tenant, c))
  }

  // ---- rectification -----------------------------------------------------------------------

  /** Marks a stored value as erroneous: reads show the correction from now on; the audit keeps both values. */
  async rectify (tenant: string, patient: string, r: { target: string; device: string; seq: number; idx?: number | undefined; corrected: number; reason: string }, actor: Actor): Promise<{ original: number; corrected: number }> {
    this.requirePatient(tenant, patient)
    const spec = RECTIFIABLE[r.target]
    if (spec === undefined) throw new RightsError('ING_ERR_INVALID', `target must be one of ${RECTIFIABLE_TARGETS.join(', ')}`)
    if (!Number.isFinite(r.corrected)) throw new RightsError('ING_ERR_INVALID', 'the correction must be a number')
    const where = `tenant_id = {tenant:String} AND patient_id = {patient:String} AND device_id = {device:String} AND seq = {seq:UInt64}${spec.byIdx ? ' AND idx = {idx:UInt16}' : ''}`
    const params = { tenant, patient, device: r.device, seq: r.seq, idx: r.idx ?? 0, corrected: r.corrected }
    await this.opts.storage.flush()
    const found = await this.rows<{ v: number | null }>(`SELECT ${spec.column} AS v FROM ${this.conn.table(spec.table)} WHERE ${where} LIMIT 1`, params)
    if (found.length === 0 || found[0]!.v === null) throw new RightsError('ING_ERR_NOT_FOUND', 'no such stored value')
    const original = Number(found[0]!.v)
    await this.conn.client.insert({
      table: this.conn.table('rectifications'), format: 'JSONEachRow',
      values: [{ tenant_id: tenant, patient_id: patient, target: r.target, device_id: r.device, seq: r.seq, idx: r.idx ?? 0, original, corrected: r.corrected, reason: r.reason.slice(0, 500), recorded_by: actor.user, ts: Date.now() }],
    })
    await this.command(`ALTER TABLE ${this.conn.table(spec.table)} UPDATE ${spec.column} = {corrected:Float64} WHERE ${where}`, params, SYNC)
    await this.audit(tenant, actor, patient, 'rectification', `${r.target} ${r.device}/${r.seq}/${r.idx ?? 0}`)
    return { original, corrected: r.corrected }
  }

  // ---- erasure -----------------------------------------------------------------------------

  /** Every MergeTree table of the database with tenant_id and patient_id columns. */
  async patientTables (): Promise<string[]> { return await this.eraser.patientTables() }

  /**
   * Erases a patient: all their rows (or, on a withdrawal with the erase flag, the rows of the
   * given consent-based categories) become invisible at once, the logs we must keep are
   * pseudonymised, and with purge nothing of them is left on disk when this returns (see
   * erasure.ts). A receipt records who, when, what and how many rows, without the data.
   */
  async erase (tenant: string, patient: string, actor: Actor, categories?: Category[], opts: { purge: boolean } = { purge: true }): Promise<ErasureReceipt> {
    this.requirePatient(tenant, patient)
    if (this.isHeld(tenant, patient)) throw new RightsError('ING_ERR_HELD', 'the patient is under legal hold; lift the hold first')
    if (categories !== undefined) {
      const bad = categories.filter((c) => CATEGORY_ROWS[c] === undefined)
      if (bad.length > 0 || categories.length === 0) throw new RightsError('ING_ERR_INVALID', `only consent-based categories can be erased on their own: ${Object.keys(CATEGORY_ROWS).join(', ')}`)
    }
    const receipt = await this.eraser.erase(tenant, patient, actor.user, categories, opts.purge)
    // the audit entry names the subject by hash: the erased id must not come back through the log
    await this.audit(tenant, actor, categories === undefined ? receipt.subjectHash : patient, 'erasure', `receipt ${receipt.receiptId}`)
    return receipt
  }

  /** Purges what erasures hid but did not yet remove physically (after a crash, a timed-out purge, or erasures run with purge: false). */
  async purgePending (): Promise<number> { return await this.eraser.purgePending() }

  async receipts (tenant: string): Promise<Array<Record<string, unknown>>> { return await this.eraser.receipts(tenant) }

  // ---- access ------------------------------------------------------------------------------

  /** Everything held on one patient, with purposes, categories, recipients, retention and source, and who looked at it. */
  async accessReport (tenant: string, patient: string): Promise<AccessReport> {
    this.requirePatient(tenant, patient)
    await this.opts.storage.flush()
    const t = this.conn.table
    const params = { tenant, patient }
    const who = 'tenant_id = {tenant:String} AND patient_id = {patient:String}'
    const policy = this.opts.policy
    const data: AccessReport['data'] = []
    for (const { table, category } of TELEMETRY) {
      const rows = await this.rows<{ category: string; purpose: string; legal_basis: string; n: string; first: string; last: string; devices: string[] }>(
        `SELECT ${category} AS category, purpose, legal_basis, count() AS n, toString(toUnixTimestamp64Milli(min(ts))) AS first,
           toString(toUnixTimestamp64Milli(max(ts))) AS last, groupUniqArray(device_id) AS devices
         FROM ${t(table)} WHERE ${who} GROUP BY category, purpose, legal_basis ORDER BY category`, params)
      for (const r of rows) {
        const categories = r.category.split('+') as Category[]
        data.push({
          table, categories, purpose: r.purpose, legalBasis: r.legal_basis, rows: Number(r.n), firstMs: Number(r.first), lastMs: Number(r.last),
          source: r.devices.sort().map((d) => ({ device: d, family: this.opts.registry.device(d)?.family ?? 'unknown' })),
          retentionDays: Math.max(...categories.map((c) => this.retentionDays(tenant, c))),
          recipients: policy.recipients[r.purpose as keyof Policy['recipients']] ?? [],
        })
      }
    }
    const consent = await this.rows<Record<string, unknown>>(`SELECT version, purpose, category, action, source, recorded_by,
      toUnixTimestamp64Milli(recorded_at) AS recorded_ms, toUnixTimestamp64Milli(valid_from) AS valid_from_ms
      FROM ${t('consent_events')} WHERE ${who} ORDER BY version`, params)
    const accessedBy = await this.rows<Record<string, unknown>>(`SELECT user_id AS user, role, action, detail, remote_address,
      toUnixTimestamp64Milli(ts) AS ts_ms FROM ${t('access_log')} WHERE ${who} ORDER BY ts`, params)
    const rectifications = await this.rows<Record<string, unknown>>(`SELECT target, device_id, toString(seq) AS seq, idx, original, corrected, reason, recorded_by,
      toUnixTimestamp64Milli(ts) AS ts_ms FROM ${t('rectifications')} WHERE ${who} ORDER BY ts`, params)
    return {
      tenant, patient, controller: this.opts.registry.tenantName(tenant) ?? tenant, processor: policy.processor, generatedAtMs: Date.now(),
      legalHold: this.isHeld(tenant, patient), restricted: this.isRestricted(tenant, patient),
      data, consent, rectifications, accessedBy, processing: this.register(tenant),
      categoriesWithoutData: CATEGORIES.filter((c) => !data.some((d) => d.categories.includes(c))),
    }
  }
}

export interface AccessReport {
  tenant: string
  patient: string
  controller: string
  processor: string
  generatedAtMs: number
  legalHold: boolean
  restricted: boolean
  data: Array<{
    table: string; categories: Category[]; purpose: string; legalBasis: string; rows: number; firstMs: number; lastMs: number
    source: Array<{ device: string; family: string }>; retentionDays: number; recipients: readonly string[]
  }>
  consent: Array<Record<string, unknown>>
  rectifications: Array<Record<string, unknown>>
  accessedBy: Array<Record<string, unknown>>
  processing: ProcessingActivity[]
  categoriesWithoutData: Category[]
}

function key (tenant: string, patient: string): string { return `${tenant}\0${patient}` }
