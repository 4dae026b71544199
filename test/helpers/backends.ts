import path from 'node:path'
import { openDatabase } from '../../server/db/connection.ts'
import { applyMigrations } from '../../server/db/migrate.ts'
import { SqliteThrottleStore } from '../../server/db/throttles.ts'
import { openPostgres } from '../../server/db/pg/connection.ts'
import { applyPgMigrations } from '../../server/db/pg/migrate.ts'
import { PgAccess } from '../../server/db/pg/access.ts'
import { PgThrottleStore } from '../../server/db/pg/throttles.ts'
import type { ThrottleRows } from '../../server/domain/regulation.ts'
import { tempDir } from './app.ts'
import { freshPostgresDatabase } from './postgres.ts'

/** The stores converted to the asynchronous ports so far, as one instance of the portal holds them. */
export interface Stores {
  throttles: ThrottleRows
  close(): Promise<void>
}

/** A fresh, migrated database of one dialect; `connect` opens it again as another instance would. */
export interface Backend {
  name: 'SQLite' | 'PostgreSQL'
  connect(): Promise<Stores>
  drop(): Promise<void>
}

export type BackendFactory = () => Promise<Backend>

async function sqliteBackend (): Promise<Backend> {
  const file = path.join(tempDir('mfa-contract-'), 'portal.db')
  const connect = async (): Promise<Stores> => {
    const database = openDatabase(file)
    applyMigrations(database.db)
    return {
      throttles: new SqliteThrottleStore(database.access),
      close: async () => { database.close() }
    }
  }
  return { name: 'SQLite', connect, drop: async () => {} }
}

async function postgresBackend (): Promise<Backend> {
  const target = await freshPostgresDatabase()
  const connect = async (): Promise<Stores> => {
    const database = await openPostgres(target.url, { max: 5 })
    await applyPgMigrations(database)
    const access = new PgAccess(database.db)
    return {
      throttles: new PgThrottleStore(access),
      close: async () => { await database.close() }
    }
  }
  return { name: 'PostgreSQL', connect, drop: async () => { await target.drop() } }
}

/** The contract suites run once per dialect: the same expectations of every store on SQLite and on PostgreSQL. */
export const BACKENDS: ReadonlyArray<{ name: Backend['name'], open: BackendFactory }> = [
  { name: 'SQLite', open: sqliteBackend },
  { name: 'PostgreSQL', open: postgresBackend }
]
