import { Readable } from 'node:stream'
import { connect, type StorageConnection, type StorageTarget } from './connection.ts'
import { migrate } from './migrate.ts'
import { TableBatcher, type BatcherOptions, type FlushReport } from './batcher.ts'
import { COLUMNS, type TableName } from './rows.ts'

export class StorageError extends Error {
  readonly code = 'ING_ERR_STORAGE'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'StorageError'
  }
}

export interface Storage {
  readonly conn: StorageConnection
  /** Queues TSV rows for a table; resolves when they are stored. */
  write: (table: TableName, chunk: string, rows: number) => Promise<void>
  /** Flushes every table and waits for the inserts. */
  flush: () => Promise<void>
  close: () => Promise<void>
}

export interface StorageOptions extends StorageTarget {
  batch: BatcherOptions
  onFlush?: (r: FlushReport) => void
}

export async function createStorage (opts: StorageOptions): Promise<Storage> {
  const conn = await connect(opts)
  await migrate(conn)
  const batchers = {} as Record<TableName, TableBatcher>
  for (const name of Object.keys(COLUMNS) as TableName[]) {
    const table = conn.table(name)
    const columns = [...COLUMNS[name]] as [string, ...string[]]
    const insert = async (body: string): Promise<void> => {
      try {
        await conn.client.insert({ table, columns, format: 'TabSeparated', values: Readable.from([body], { objectMode: false }) })
      } catch (cause) {
        throw new StorageError(`insert into ${table} failed`, { cause })
      }
    }
    batchers[name] = new TableBatcher(name, insert, opts.batch, opts.onFlush)
  }
  let closed = false
  const flush = async (): Promise<void> => { await Promise.all(Object.values(batchers).map((b) => b.drain())) }
  return {
    conn,
    write: (table, chunk, rows) => batchers[table].add(chunk, rows),
    flush,
    close: async () => {
      if (closed) return
      closed = true
      await flush()
      await conn.client.close()
    },
  }
}
