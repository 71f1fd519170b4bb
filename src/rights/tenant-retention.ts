/**
 * Retention per tenant and category (within the policy's legal range), and
 * the table TTLs made from it, the policy and the legal holds.
 */
import { RETENTION_TABLES, retentionDigest, retentionTtls, type Category, type Policy } from '../consent/index.ts'
import { insertRows, rewriteSettings, rewriteTarget, runCommand, selectRows, type StorageConnection } from '../storage/index.ts'
import type { Actor } from './audit.ts'
import { RightsError } from './errors.ts'

export class TenantRetention {
  private readonly days = new Map<string, Partial<Record<Category, number>>>()

  private constructor (private readonly conn: StorageConnection, private readonly policy: Policy) {}

  static async load (conn: StorageConnection, policy: Policy): Promise<TenantRetention> {
    const r = new TenantRetention(conn, policy)
    for (const row of await selectRows<{ tenant_id: string; category: Category; days: number }>(conn, `SELECT tenant_id, category, days FROM ${conn.table('tenant_retention')} FINAL`)) {
      r.days.set(row.tenant_id, { ...r.days.get(row.tenant_id), [row.category]: Number(row.days) })
    }
    return r
  }

  daysOf (tenant: string, category: Category): number {
    return this.days.get(tenant)?.[category] ?? this.policy.retention[category].defaultDays
  }

  /** Records the tenant's choice; the caller applies the TTLs. */
  async set (tenant: string, category: Category, days: number, actor: Actor): Promise<void> {
    const rule = this.policy.retention[category]
    if (!Number.isInteger(days) || days < rule.minDays || days > rule.maxDays) {
      throw new RightsError('ING_ERR_INVALID', `retention of ${category} must be ${rule.minDays}..${rule.maxDays} days (${rule.source})`)
    }
    await insertRows(this.conn, 'tenant_retention', [{ tenant_id: tenant, category, days, recorded_by: actor.user, updated_at: Date.now() }])
    this.days.set(tenant, { ...this.days.get(tenant), [category]: days })
  }

  /**
   * Writes the TTL of every retention table from the policy, the tenants' choices and the holds.
   * MODIFY TTL makes ClickHouse re-evaluate every part of the table, so a table whose clauses
   * are unchanged since the last write (kept in retention_applied) is left alone. On a cluster the
   * TTL is the local table's, ON CLUSTER, waited for on every replica (a Distributed table has none);
   * retention_applied is replicated to every node, so one node's write is every node's record.
   */
  async apply (holds: ReadonlyArray<{ tenant: string; patient: string }>): Promise<void> {
    const ttls = retentionTtls({ policy: this.policy, overrides: this.days, holds })
    const applied = new Map((await selectRows<{ table_name: string; ttl: string }>(this.conn, `SELECT table_name, ttl FROM ${this.conn.table('retention_applied')} FINAL`))
      .map((r) => [r.table_name, r.ttl]))
    for (const table of Object.keys(RETENTION_TABLES)) {
      const ttl = ttls[table]!
      const digest = retentionDigest(ttl)
      if (applied.get(table) === digest) continue
      await runCommand(this.conn, `ALTER TABLE ${rewriteTarget(this.conn, table)} MODIFY TTL ${ttl}`, {}, rewriteSettings(this.conn))
      await insertRows(this.conn, 'retention_applied', [{ table_name: table, ttl: digest, applied_at: Date.now() }])
    }
  }
}
