/**
 * The three ways the node talks SQL to ClickHouse outside the batcher: read
 * rows, run a statement, insert a few rows. Parameters always go in as query
 * parameters ({name:Type}), never into the text.
 */
import type { StorageConnection } from './connection.ts'

type Params = Record<string, unknown>

/** The rows of a SELECT, one object per row (JSONEachRow). */
export async function selectRows<T> (conn: Pick<StorageConnection, 'client'>, query: string, params: Params = {}): Promise<T[]> {
  return await (await conn.client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>()
}

/** A statement without rows (DDL, ALTER ... UPDATE/DELETE), with its ClickHouse settings. */
export async function runCommand (conn: Pick<StorageConnection, 'client'>, query: string, params: Params = {}, settings: Record<string, string> = {}): Promise<void> {
  await conn.client.command({ query, query_params: params, clickhouse_settings: settings })
}

/** Inserts rows given as objects into a table of the node's database (name without the database). */
export async function insertRows (conn: StorageConnection, table: string, values: ReadonlyArray<Record<string, unknown>>): Promise<void> {
  await conn.client.insert({ table: conn.table(table), values: [...values], format: 'JSONEachRow' })
}
