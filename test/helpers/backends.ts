import path from 'node:path'
import { openDatabase, type Database } from '../../server/db/connection.ts'
import { applyMigrations } from '../../server/db/migrate.ts'
import { openPostgres, type PostgresDatabase } from '../../server/db/pg/connection.ts'
import { applyPgMigrations } from '../../server/db/pg/migrate.ts'
import { PgAccess } from '../../server/db/pg/access.ts'
import { tempDir } from './app.ts'
import { freshPostgresDatabase } from './postgres.ts'

/** One instance's connection to a migrated database: build the stores under test on it. */
export type Connection =
  | { dialect: 'sqlite', database: Database }
  | { dialect: 'postgresql', database: PostgresDatabase, access: PgAccess }

/** A fresh, migrated database of one dialect; `connect` opens it (again, as another instance would). */
export interface Backend {
  name: 'SQLite' | 'PostgreSQL'
  connect(): Promise<Connection & { close(): Promise<void> }>
  drop(): Promise<void>
}

async function sqliteBackend (): Promise<Backend> {
  const file = path.join(tempDir('mfa-contract-'), 'portal.db')
  return {
    name: 'SQLite',
    connect: async () => {
      const database = openDatabase(file)
      applyMigrations(database.db)
      return { dialect: 'sqlite', database, close: async () => { database.close() } }
    },
    drop: async () => {}
  }
}

async function postgresBackend (): Promise<Backend> {
  const target = await freshPostgresDatabase()
  return {
    name: 'PostgreSQL',
    connect: async () => {
      const database = await openPostgres(target.url, { max: 5 })
      await applyPgMigrations(database)
      return { dialect: 'postgresql', database, access: new PgAccess(database.db), close: async () => { await database.close() } }
    },
    drop: async () => { await target.drop() }
  }
}

/**
 * The contract suites run once per dialect: the same expectations of every store on SQLite and on PostgreSQL. A
 * suite builds its stores from the connection (`storesOn`), the SQLite class on one and its PostgreSQL twin on the
 * other, and awaits every call.
 */
export const BACKENDS: ReadonlyArray<{ name: Backend['name'], open: () => Promise<Backend> }> = [
  { name: 'SQLite', open: sqliteBackend },
  { name: 'PostgreSQL', open: postgresBackend }
]
