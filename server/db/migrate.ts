import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type Sqlite from 'better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import type { Db } from './connection.ts'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url))

/** Applies every migration not yet applied. Synchronous and idempotent. */
export function applyMigrations (db: Db): void {
  migrate(db, { migrationsFolder: MIGRATIONS_DIR })
}

export interface MigrationStatus {
  applied: number
  expected: number
  current: boolean
}

let journal: Array<{ when: number }> | undefined

/**
 * Compares the database with migrations/meta/_journal.json the way drizzle's migrator decides what is
 * pending: by the newest applied migration's timestamp (its bookkeeping table has no usable ids).
 */
export function migrationStatus (sqlite: Sqlite.Database): MigrationStatus {
  journal ??= (JSON.parse(readFileSync(`${MIGRATIONS_DIR}meta/_journal.json`, 'utf8')) as { entries: Array<{ when: number }> }).entries
  const table = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'").get()
  const row = table === undefined
    ? { n: 0, newest: null }
    : sqlite.prepare('SELECT count(*) AS n, max(created_at) AS newest FROM __drizzle_migrations').get() as { n: number, newest: number | null }
  const newestExpected = journal.at(-1)?.when ?? 0
  return { applied: row.n, expected: journal.length, current: row.n >= journal.length && (row.newest ?? 0) >= newestExpected }
}

/** Readiness: the database answers and every migration is applied. Throws when the database is unreachable. */
export function databaseReadiness (sqlite: Sqlite.Database): MigrationStatus {
  sqlite.prepare('SELECT 1').get()
  return migrationStatus(sqlite)
}
