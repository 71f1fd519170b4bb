/**
 * How the statements of one erasure select its subject without naming the patient.
 *
 * One server: the patient id goes into `erasure_set` (a Memory table, never on disk) as inserted
 * data, and every statement selects `patient_id IN (SELECT ... FROM erasure_set WHERE erasure_id =
 * '<uuid>')`: statement texts and mutation records name a random erasure id only.
 *
 * A ClickHouse cluster: a subject set cannot work there. Each replica runs a mutation of a
 * Replicated table on its own parts, at its own time (a replica that was down runs it when it is
 * back), and evaluates a subquery against its own tables: over a per-node Memory table a replica that
 * restarted, lagged or was down finds an empty set and keeps the rows, and ClickHouse refuses a
 * subquery in such a mutation unless allow_nondeterministic_mutations is set for that reason. So on a
 * cluster the predicate is deterministic: the receipt's own subject hash, `SHA256(salt \0 tenant \0
 * patient_id) = <subject hash>`, computed by ClickHouse from each row. The statements (and so the
 * mutation records in Keeper, the distributed DDL queue, system.mutations and the query log) hold the
 * salt and the hash the receipt publishes anyway, never the id: whoever knows the id can check them,
 * as they can check the receipt. It costs a SHA-256 per row of the tenant's parts a statement reads
 * (about 60 ns on the 2-core build machine).
 */
import { insertRows, runCommand, type StorageConnection } from '../storage/index.ts'

export interface Subject {
  /** Query parameters the predicate uses (never the patient id). */
  params: Record<string, string>
  /** The subject's rows of the tenant; columns qualified with `alias.` when given. */
  who: (alias?: string) => string
  /** Before the first statement that uses `who`. */
  open: () => Promise<void>
  /** After the last one, also when the erasure failed. */
  close: () => Promise<void>
}

export interface SubjectIds { tenant: string; patient: string; eid: string; salt: string; subjectHash: string }

const SYNC = { mutations_sync: '2' } as const

/** One server: the subject set. */
export function subjectSet (conn: StorageConnection, s: SubjectIds): Subject {
  const set = conn.table('erasure_set')
  return {
    params: { tenant: s.tenant, eid: s.eid, hash: s.subjectHash },
    who: (alias) => {
      const a = alias === undefined ? '' : `${alias}.`
      return `${a}tenant_id = {tenant:String} AND ${a}patient_id IN (SELECT e.patient_id FROM ${set} AS e WHERE e.erasure_id = {eid:String})`
    },
    // the id travels as inserted data into a table that never reaches disk; no statement text holds it
    open: async () => { await insertRows(conn, 'erasure_set', [{ erasure_id: s.eid, tenant_id: s.tenant, patient_id: s.patient }]) },
    close: async () => { await runCommand(conn, `ALTER TABLE ${set} DELETE WHERE erasure_id = {eid:String}`, { eid: s.eid }, SYNC) },
  }
}

/** A cluster: the receipt's subject hash, computed per row; nothing to set up or remove. */
export function subjectHash (s: SubjectIds): Subject {
  return {
    params: { tenant: s.tenant, salt: s.salt, hash: s.subjectHash },
    who: (alias) => {
      const a = alias === undefined ? '' : `${alias}.`
      return `${a}tenant_id = {tenant:String} AND SHA256(concat({salt:String}, char(0), ${a}tenant_id, char(0), ${a}patient_id)) = unhex({hash:String})`
    },
    open: async () => {},
    close: async () => {},
  }
}
