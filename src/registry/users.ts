/**
 * Personal accounts of the people who read data: platform administrators,
 * tenant administrators, clinicians, researchers and alarm responders. One
 * account per person, passwords as a slow hash, and a lock-out after
 * repeated failures.
 */
import { insertRows, selectRows, type StorageConnection } from '../storage/index.ts'
import { isId } from '../ids.ts'
import { hashSecret, placeholderHash, verifySecret } from './secrets.ts'
import type { Hasher } from './hasher.ts'
import { VitalflowError } from '../errors.ts'

export const ROLES = ['platform_admin', 'tenant_admin', 'clinician', 'researcher', 'responder'] as const
export type Role = (typeof ROLES)[number]

export interface Principal { tenant: string; user: string; role: Role }

export type LoginResult = { ok: true; principal: Principal } | { ok: false; reason: 'ING_ERR_AUTH' | 'ING_ERR_LOCKED'; retryAfterMs?: number }

export interface LockoutPolicy { maxFailures: number; lockMs: number }

/** Failed log-ins in a row and the end of a lock, of an account or of a name that has none. */
interface Attempts { failures: number; lockedUntil: number }
interface Account extends Attempts { principal: Principal; hash: string }

export class UserError extends VitalflowError<'ING_ERR_INVALID' | 'ING_ERR_CONFLICT'> {}

const MIN_PASSWORD = 12
/** Names without an account whose failed log-ins are remembered; the oldest are forgotten first. */
const MAX_UNKNOWN = 100_000

export class Users {
  private readonly accounts = new Map<string, Account>()
  /**
   * Failures of names that have no account, counted and locked exactly like an account's, so the
   * answers (401 ... 423 with Retry-After) never tell whether an account exists. Bounded: an evicted
   * name starts again from zero, which an attacker can only cause by failing MAX_UNKNOWN other names
   * (each one a password hash, under the per-source back-off).
   */
  private readonly unknown = new Map<string, Attempts>()
  private dummy: string | undefined

  private constructor (private readonly conn: StorageConnection, private readonly lockout: LockoutPolicy, private readonly cost: number, private readonly hasher: Hasher) {}

  static async load (conn: StorageConnection, lockout: LockoutPolicy, cost: number, hasher: Hasher): Promise<Users> {
    const u = new Users(conn, lockout, cost, hasher)
    for (const r of await selectRows<{ tenant_id: string; user_id: string; role: Role; password_hash: string }>(conn,
      `SELECT tenant_id, user_id, role, password_hash FROM ${conn.table('users')} FINAL WHERE disabled = 0`)) {
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
    await insertRows(this.conn, 'users', [{ tenant_id: tenant, user_id: user, role, password_hash: hash, disabled: 0, updated_at: Date.now() }])
    const principal = { tenant, user, role }
    // a name's failures before it had an account carry over: creating it does not unlock it
    const before = this.unknown.get(key)
    this.unknown.delete(key)
    this.accounts.set(key, { principal, hash, failures: before?.failures ?? 0, lockedUntil: before?.lockedUntil ?? 0 })
    return principal
  }

  /**
   * Checks a password; after maxFailures wrong ones in a row the name is locked for lockMs, right password or not.
   * A name without an account is counted and locked the same way, and every attempt (locked or not, known or
   * not) costs one password hash, so neither the answer nor the work tells whether the account exists.
   * Rejects with HasherBusyError (ING_ERR_AUTH_BUSY) when too many password checks are waiting.
   */
  async login (tenant: string, user: string, password: string, now = Date.now()): Promise<LoginResult> {
    const key = `${tenant}\0${user}`
    const a = this.accounts.get(key)
    this.dummy ??= placeholderHash(this.cost)
    const ok = await verifySecret(this.hasher, password, a?.hash ?? this.dummy)
    const at = a ?? this.unknownAttempts(key)
    if (at.lockedUntil > now) return { ok: false, reason: 'ING_ERR_LOCKED', retryAfterMs: at.lockedUntil - now }
    if (!ok || a === undefined) {
      at.failures++
      if (at.failures >= this.lockout.maxFailures) { at.lockedUntil = now + this.lockout.lockMs; at.failures = 0 }
      return { ok: false, reason: 'ING_ERR_AUTH' }
    }
    a.failures = 0
    return { ok: true, principal: a.principal }
  }

  /** The failure record of a name without an account, created (and the oldest forgotten) as needed; touched to be the newest. */
  private unknownAttempts (key: string): Attempts {
    const found = this.unknown.get(key)
    if (found !== undefined) this.unknown.delete(key)
    else if (this.unknown.size >= MAX_UNKNOWN) this.unknown.delete(this.unknown.keys().next().value!)
    const at = found ?? { failures: 0, lockedUntil: 0 }
    this.unknown.set(key, at)
    return at
  }
}
