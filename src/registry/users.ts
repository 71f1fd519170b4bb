/**
 * Personal accounts of the people who read data: platform administrators,
 * tenant administrators, clinicians, researchers and alarm responders. One
 * account per person, passwords as a slow hash, and a lock-out after
 * repeated failures.
 */
import type { ClickHouseClient } from '@clickhouse/client'
import type { StorageConnection } from '../storage/index.ts'
import { isId } from '../ids.ts'
import { hashSecret, placeholderHash, verifySecret } from './secrets.ts'
import type { Hasher } from './hasher.ts'

export const ROLES = ['platform_admin', 'tenant_admin', 'clinician', 'researcher', 'responder'] as const
export type Role = (typeof ROLES)[number]

export interface Principal { tenant: string; user: string; role: Role }

export type LoginResult = { ok: true; principal: Principal } | { ok: false; reason: 'ING_ERR_AUTH' | 'ING_ERR_LOCKED'; retryAfterMs?: number }

export interface LockoutPolicy { maxFailures: number; lockMs: number }

interface Account { principal: Principal; hash: string; failures: number; lockedUntil: number }

export class UserError extends Error {
  constructor (readonly code: 'ING_ERR_INVALID' | 'ING_ERR_CONFLICT', message: string) {
    super(message)
    this.name = 'UserError'
  }
}

const MIN_PASSWORD = 12

export class Users {
  private readonly accounts = new Map<string, Account>()
  private readonly client: ClickHouseClient
  private dummy: string | undefined

  private constructor (private readonly conn: StorageConnection, private readonly lockout: LockoutPolicy, private readonly cost: number, private readonly hasher: Hasher) {
    this.client = conn.client
  }

  static async load (conn: StorageConnection, lockout: LockoutPolicy, cost: number, hasher: Hasher): Promise<Users> {
    const u = new Users(conn, lockout, cost, hasher)
    const rs = await conn.client.query({ query: `SELECT tenant_id, user_id, role, password_hash FROM ${conn.table('users')} FINAL WHERE disabled = 0`, format: 'JSONEachRow' })
    for (const r of await rs.json<{ tenant_id: string; user_id: string; role: Role; password_hash: string }>()) {
      u.accounts.set(`${r.tenant_id}\0${r.user_id}`, { principal: { tenant: r.tenant_id, user: r.user_id, role: r.role }, hash: r.password_hash, failures: 0, lockedUntil: 0 })
    }
    return u
  }

  async create (tenant: string, user: string, role: Role, password: string): Promise<Principal> {
    if (!isId(user) || (tenant !== '' && !isId(tenant))) throw new UserError('ING_ERR_INVALID', 'user and tenant ids must match [A-Za-z0-9_-]{1,64}')
    if ((role === 'platform_admin') !== (tenant === '')) throw new UserError('ING_ERR_INVALID', 'platform administrators have no tenant; everyone else has one')
    if (password.length < MIN_PASSWORD) throw new UserError('ING_ERR_INVALID', `password must have at least ${MIN_PASSWORD} characters`)
    const key = `${tenant}\0${user}`
    if (this.accounts.has(key)) throw new UserError('ING_ERR_CONFLICT', 'user exists')
    const hash = await hashSecret(this.hasher, password, this.cost)
    await this.client.insert({
      table: this.conn.table('users'), format: 'JSONEachRow',
      values: [{ tenant_id: tenant, user_id: user, role, password_hash: hash, disabled: 0, updated_at: Date.now() }],
    })
    const principal = { tenant, user, role }
    this.accounts.set(key, { principal, hash, failures: 0, lockedUntil: 0 })
    return principal
  }

  /**
   * Checks a password; after maxFailures wrong ones in a row the account is locked for lockMs, right password or not.
   * Rejects with HasherBusyError (ING_ERR_AUTH_BUSY) when too many password checks are waiting.
   */
  async login (tenant: string, user: string, password: string, now = Date.now()): Promise<LoginResult> {
    const a = this.accounts.get(`${tenant}\0${user}`)
    if (a !== undefined && a.lockedUntil > now) return { ok: false, reason: 'ING_ERR_LOCKED', retryAfterMs: a.lockedUntil - now }
    // an unknown user costs the same hash work as a known one
    this.dummy ??= placeholderHash(this.cost)
    const ok = await verifySecret(this.hasher, password, a?.hash ?? this.dummy)
    if (a === undefined) return { ok: false, reason: 'ING_ERR_AUTH' }
    if (!ok) {
      a.failures++
      if (a.failures >= this.lockout.maxFailures) { a.lockedUntil = now + this.lockout.lockMs; a.failures = 0 }
      return { ok: false, reason: 'ING_ERR_AUTH' }
    }
    a.failures = 0
    return { ok: true, principal: a.principal }
  }
}

