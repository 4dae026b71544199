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

let journalEntries: number | undefined

export function migrationStatus (sqlite: Sqlite.Database): MigrationStatus {
  journalEntries ??= (JSON.parse(readFileSync(`${MIGRATIONS_DIR}meta/_journal.json`, 'utf8')) as { entries: unknown[] }).entries.length
  const table = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'").get()
  const applied = table === undefined ? 0 : (sqlite.prepare('SELECT count(*) AS n FROM __drizzle_migrations').get() as { n: number }).n
  return { applied, expected: journalEntries, current: applied === journalEntries }
}
