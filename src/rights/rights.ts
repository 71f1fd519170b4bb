/**
 * Data-subject rights as working functions (privacy-requirements.md, "Data-subject
 * rights"): access report, erasure with a receipt, legal hold, restriction,
 * rectification, retention per tenant, the register of processing, and the
 * access audit (NEN 7513). The HTTP API and the admin CLI call these; the
 * export lives in export.ts.
 *
 * Erasure finds its tables in system.columns (every MergeTree table with a
 * patient_id column), so a table added later is covered without touching
 * this file. Rows the law makes us keep (the opt-in register, hold and
 * restriction history, the access log) are pseudonymised with the receipt's
 * subject hash instead of deleted; everything else is deleted.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import {
  CATEGORIES, RETENTION_TABLES, registerOfProcessing, retentionTtls,
  type Category, type ConsentIndex, type Policy, type ProcessingActivity,
} from '../consent/index.ts'
import type { Registry } from '../registry/index.ts'
import type { Storage } from '../storage/index.ts'

export class RightsError extends Error {
  constructor (readonly code: 'ING_ERR_HELD' | 'ING_ERR_INVALID' | 'ING_ERR_NOT_FOUND', message: string) {
    super(message)
    this.name = 'RightsError'
  }
}

/** Who asks: every rights call is logged in the access log under this. */
export interface Actor { user: string; role: string; remoteAddress?: string | undefined }

export interface ErasureReceipt {
  receiptId: string
  tenant: string
  /** sha256(salt \0 tenant \0 patient), hex: whoever knows the patient id can check the receipt; it names nobody. */
  subjectHash: string
  salt: string
  scope: 'all' | Category[]
  requestedBy: string
  requestedAtMs: number
  /** Rows per table: `table` erased, `table (pseudonymised)` kept under the subject hash, `table (unbound)` binding history cleared. */
  rowCounts: Record<string, number>
  hiddenAtMs: number
  purgedAtMs: number | null
}

/** Rows about a patient kept under a legal obligation: pseudonymised on erasure, not deleted. */
const PSEUDONYMISE: ReadonlySet<string> = new Set(['consent_events', 'legal_holds', 'restrictions', 'access_log'])
/** Binding history: the patient id becomes "nobody", so the time ranges stay and late data of that time is not misattributed. */
const UNBIND: ReadonlySet<string> = new Set(['devices', 'device_bindings'])

/** Where each consent-based category's values live, for erasure on withdrawal. */
const CATEGORY_ROWS: Partial<Record<Category, { table: string; where: string; clear?: string }>> = {
  vitals: { table: 'vital_samples', where: "category = 'vitals'" },
  sleep: { table: 'vital_samples', where: "category = 'sleep'" },
  activity: { table: 'vital_samples', where: "category = 'activity'" },
  spot_measurements: { table: 'spot_measurements', where: '1' },
  // location rides on alarm events (contract): clear the coordinates, keep the alarm
  location: { table: 'alarm_events', where: 'latitude IS NOT NULL', clear: 'latitude = NULL, longitude = NULL, accuracy_m = NULL, location_consent_version = 0' },
}

/** Values a professional may rectify: table.column → the row key columns. */
const RECTIFIABLE: Readonly<Record<string, { table: string; column: string; byIdx: boolean }>> = {
  'vital_samples.value': { table: 'vital_samples', column: 'value', byIdx: true },
  ...Object.fromEntries(['systolic', 'diastolic', 'pulse', 'spo2', 'temperature', 'glucose', 'weight'].map((c) =>
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

export interface RightsOptions { storage: Storage; registry: Registry; consent: ConsentIndex; policy: Policy }

export class Rights {
  private readonly held = new Set<string>()
  private readonly restricted = new Set<string>()
  private readonly retention = new Map<string, Partial<Record<Category, number>>>()
  private readonly conn: Storage['conn']

  private constructor (private readonly opts: RightsOptions) {
    this.conn = opts.storage.conn
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
  async patientTables (): Promise<string[]> {
    const rows = await this.rows<{ table: string }>(
      `SELECT c.table AS table FROM system.columns AS c INNER JOIN system.tables AS t ON c.database = t.database AND c.table = t.name
       WHERE c.database = {db:String} AND c.name IN ('tenant_id', 'patient_id') AND t.engine LIKE '%MergeTree%'
       GROUP BY c.table HAVING count() = 2 ORDER BY c.table`, { db: this.conn.database })
    return rows.map((r) => r.table)
  }

  /**
   * Erases a patient: all their rows (or, on a withdrawal with the erase flag,
   * the rows of the given consent-based categories) become invisible at once
   * (lightweight DELETE), then are physically removed (APPLY DELETED MASK
   * rewrites the parts; the old parts go after old_parts_lifetime). The
   * write-ahead log is switched to a new segment so no file keeps them. A
   * receipt records who, when, what and how many rows, without the data.
   */
  async erase (tenant: string, patient: string, actor: Actor, categories?: Category[], opts: { purge: boolean } = { purge: true }): Promise<ErasureReceipt> {
    this.requirePatient(tenant, patient)
    if (this.isHeld(tenant, patient)) throw new RightsError('ING_ERR_HELD', 'the patient is under legal hold; lift the hold first')
    if (categories !== undefined) {
      const bad = categories.filter((c) => CATEGORY_ROWS[c] === undefined)
      if (bad.length > 0 || categories.length === 0) throw new RightsError('ING_ERR_INVALID', `only consent-based categories can be erased on their own: ${Object.keys(CATEGORY_ROWS).join(', ')}`)
    }
    const requestedAtMs = Date.now()
    // stop new rows first, then let everything in flight land, then remove
    if (categories === undefined) await this.opts.registry.forgetPatient(tenant, patient)
    await this.opts.storage.sealLog()
    const salt = randomBytes(16).toString('hex')
    const subjectHash = createHash('sha256').update(`${salt}\0${tenant}\0${patient}`).digest('hex')
    const params = { tenant, patient, hash: subjectHash }
    const who = 'tenant_id = {tenant:String} AND patient_id = {patient:String}'
    const rowCounts: Record<string, number> = {}
    const touched = new Set<string>()
    const count = async (table: string, where: string): Promise<number> =>
      Number((await this.rows<{ n: string }>(`SELECT count() AS n FROM ${this.conn.table(table)} WHERE ${who} AND ${where}`, params))[0]?.n ?? 0)

    if (categories === undefined) {
      for (const table of await this.patientTables()) {
        const n = await count(table, '1')
        if (n === 0) continue
        const t = this.conn.table(table)
        if (PSEUDONYMISE.has(table)) {
          rowCounts[`${table} (pseudonymised)`] = n
          await this.command(`INSERT INTO ${t} SELECT * REPLACE ({hash:String} AS patient_id) FROM ${t} WHERE ${who}`, params)
          await this.command(`DELETE FROM ${t} WHERE ${who}`, params)
        } else if (UNBIND.has(table)) {
          rowCounts[`${table} (unbound)`] = n
          await this.command(`ALTER TABLE ${t} UPDATE patient_id = '' WHERE ${who}`, params, SYNC)
        } else {
          rowCounts[table] = n
          await this.command(`DELETE FROM ${t} WHERE ${who}`, params)
        }
        touched.add(table)
      }
    } else {
      for (const c of categories) {
        const spec = CATEGORY_ROWS[c]!
        const n = await count(spec.table, spec.where)
        rowCounts[`${spec.table}:${c}`] = n
        if (n === 0) continue
        if (spec.clear !== undefined) await this.command(`ALTER TABLE ${this.conn.table(spec.table)} UPDATE ${spec.clear} WHERE ${who} AND ${spec.where}`, params, SYNC)
        else await this.command(`DELETE FROM ${this.conn.table(spec.table)} WHERE ${who} AND ${spec.where}`, params)
        touched.add(spec.table)
      }
    }
    const receipt: ErasureReceipt = {
      receiptId: randomUUID(), tenant, subjectHash, salt, scope: categories ?? 'all', requestedBy: actor.user, requestedAtMs,
      rowCounts, hiddenAtMs: Date.now(), purgedAtMs: null,
    }
    await this.writeReceipt(receipt)
    if (opts.purge) {
      await this.purge([...touched])
      receipt.purgedAtMs = Date.now()
      await this.writeReceipt(receipt)
    }
    // the audit entry names the subject by hash: the erased id must not come back through the log
    await this.audit(tenant, actor, categories === undefined ? subjectHash : patient, 'erasure', `receipt ${receipt.receiptId}`)
    return receipt
  }

  /** Purges what erasures hid but did not yet remove physically (after a crash, or erasures run with purge: false). */
  async purgePending (): Promise<number> {
    const t = this.conn.table
    const pending = await this.rows<{ receipt_id: string; tenant_id: string }>(`SELECT receipt_id, tenant_id FROM ${t('erasure_receipts')} FINAL WHERE purged_at IS NULL`)
    if (pending.length === 0) return 0
    await this.purge(await this.patientTables())
    for (const p of pending) {
      await this.command(`ALTER TABLE ${t('erasure_receipts')} UPDATE purged_at = now64(3) WHERE receipt_id = {id:String} AND tenant_id = {tenant:String}`,
        { id: p.receipt_id, tenant: p.tenant_id }, SYNC)
    }
    return pending.length
  }

  private async purge (tables: string[]): Promise<void> {
    for (const table of tables) await this.command(`ALTER TABLE ${this.conn.table(table)} APPLY DELETED MASK`, {}, SYNC)
  }

  private async writeReceipt (r: ErasureReceipt): Promise<void> {
    await this.conn.client.insert({
      table: this.conn.table('erasure_receipts'), format: 'JSONEachRow',
      values: [{
        receipt_id: r.receiptId, tenant_id: r.tenant, subject_hash: r.subjectHash, salt: r.salt, scope: r.scope === 'all' ? 'all' : r.scope.join(','),
        requested_by: r.requestedBy, requested_at: r.requestedAtMs, row_counts: r.rowCounts, hidden_at: r.hiddenAtMs, purged_at: r.purgedAtMs,
      }],
    })
  }

  async receipts (tenant: string): Promise<Array<Record<string, unknown>>> {
    return await this.rows(`SELECT receipt_id, subject_hash, salt, scope, requested_by, toUnixTimestamp64Milli(requested_at) AS requested_ms, row_counts,
      toUnixTimestamp64Milli(hidden_at) AS hidden_ms, toUnixTimestamp64Milli(purged_at) AS purged_ms FROM ${this.conn.table('erasure_receipts')} FINAL
      WHERE tenant_id = {tenant:String} ORDER BY requested_at`, { tenant })
  }

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
