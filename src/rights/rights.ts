/**
 * Data-subject rights as working functions (privacy-requirements.md, "Data-subject
 * rights"): access report, erasure with a receipt, legal hold, restriction,
 * rectification, retention per tenant, the register of processing, and the
 * access audit (NEN 7513). The HTTP API and the admin CLI call these; the
 * export lives in export.ts.
 *
 * This class is the stage's one face; each right lives in its own module:
 * audit.ts, flags.ts (hold, restriction), tenant-retention.ts, rectification.ts,
 * access-report.ts and erasure.ts (every MergeTree table with a patient_id
 * column, the logs the law makes us keep pseudonymised under the receipt's
 * subject hash, and nothing of the subject left on disk once it is purged).
 */
import { registerOfProcessing, type Category, type ConsentIndex, type Policy, type ProcessingActivity } from '../consent/index.ts'
import type { Registry } from '../registry/index.ts'
import type { Storage } from '../storage/index.ts'
import { accessReport, type AccessReport } from './access-report.ts'
import { audit, type Actor } from './audit.ts'
import { CATEGORY_ROWS, Eraser, type ErasureOptions, type ErasureReceipt } from './erasure.ts'
import { RightsError } from './errors.ts'
import { PatientFlags } from './flags.ts'
import { rectify, type Rectification } from './rectification.ts'
import { TenantRetention } from './tenant-retention.ts'

export interface RightsOptions { storage: Storage; registry: Registry; consent: ConsentIndex; policy: Policy; erasure?: ErasureOptions }

export class Rights {
  private readonly conn: Storage['conn']
  private readonly eraser: Eraser

  private constructor (private readonly opts: RightsOptions, private flags: PatientFlags, private retention: TenantRetention) {
    this.conn = opts.storage.conn
    this.eraser = new Eraser(opts.storage, opts.registry, opts.erasure)
  }

  /**
   * Several nodes on one ClickHouse server or cluster share the holds, restrictions and retention
   * choices, but each keeps them in memory from its start (they do not go through the change feed):
   * before a right that acts on them, a node reads them again, so it does not erase a patient another
   * node put under hold, nor write TTLs without another node's hold or a tenant's choice made there.
   * Embedded chDB is one node's own store: nothing to read.
   */
  private async current (): Promise<void> {
    if (this.conn.mode !== 'server') return
    this.flags = await PatientFlags.load(this.conn)
    this.retention = await TenantRetention.load(this.conn, this.opts.policy)
  }

  static async load (opts: RightsOptions): Promise<Rights> {
    const conn = opts.storage.conn
    const r = new Rights(opts, await PatientFlags.load(conn), await TenantRetention.load(conn, opts.policy))
    await r.applyRetention()
    await r.eraser.ensureTableSettings()
    // an erasure interrupted between hiding and purging is purged now
    await r.purgePending()
    return r
  }

  private requirePatient (tenant: string, patient: string): void {
    if (!this.opts.registry.hasPatient(tenant, patient)) throw new RightsError('ING_ERR_NOT_FOUND', 'unknown patient')
  }

  /** Logs a read of (or an action on) personal data: one row per patient, in one insert. Awaited before the answer goes out. */
  async audit (tenant: string, actor: Actor, patient: string | readonly string[], action: string, detail: string): Promise<void> {
    await audit(this.conn, tenant, actor, patient, action, detail)
  }

  // ---- legal hold and restriction ----------------------------------------------------------

  isHeld (tenant: string, patient: string): boolean { return this.flags.has('hold', tenant, patient) }
  isRestricted (tenant: string, patient: string): boolean { return this.flags.has('restriction', tenant, patient) }

  /** Places or lifts a legal hold: a held patient's data survives erasure requests and retention. */
  async setHold (tenant: string, patient: string, hold: boolean, actor: Actor, reason: string): Promise<void> {
    this.requirePatient(tenant, patient)
    await this.current()
    await this.flags.change('hold', tenant, patient, hold, actor, reason)
    await this.applyRetention()
  }

  /** Restricts processing (data kept, hidden from every read but the rights export) or lifts it. */
  async setRestriction (tenant: string, patient: string, restrict: boolean, actor: Actor, reason: string): Promise<void> {
    this.requirePatient(tenant, patient)
    await this.current()
    await this.flags.change('restriction', tenant, patient, restrict, actor, reason)
  }

  // ---- retention and the register ----------------------------------------------------------

  retentionDays (tenant: string, category: Category): number { return this.retention.daysOf(tenant, category) }

  async setRetention (tenant: string, category: Category, days: number, actor: Actor): Promise<void> {
    if (!this.opts.registry.hasTenant(tenant)) throw new RightsError('ING_ERR_NOT_FOUND', 'unknown tenant')
    await this.current()
    await this.retention.set(tenant, category, days, actor)
    await this.applyRetention()
  }

  /** Writes the TTL of every retention table from the policy, the tenants' choices and the holds (unchanged tables are left alone). */
  async applyRetention (): Promise<void> { await this.retention.apply(this.flags.list('hold')) }

  register (tenant: string): ProcessingActivity[] {
    const name = this.opts.registry.tenantName(tenant)
    if (name === undefined) throw new RightsError('ING_ERR_NOT_FOUND', 'unknown tenant')
    return registerOfProcessing(this.opts.policy, { id: tenant, name }, (c) => this.retentionDays(tenant, c))
  }

  // ---- rectification -----------------------------------------------------------------------

  /** Marks a stored value as erroneous: reads show the correction from now on; the audit keeps both values. */
  async rectify (tenant: string, patient: string, r: Rectification, actor: Actor): Promise<{ original: number; corrected: number }> {
    this.requirePatient(tenant, patient)
    return await rectify(this.opts.storage, tenant, patient, r, actor)
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
    await this.current()
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
    return await accessReport(tenant, patient, {
      storage: this.opts.storage, registry: this.opts.registry, policy: this.opts.policy,
      retentionDays: (t, c) => this.retentionDays(t, c),
      legalHold: this.isHeld(tenant, patient), restricted: this.isRestricted(tenant, patient), processing: this.register(tenant),
    })
  }
}
