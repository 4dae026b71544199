import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import path from 'node:path'
import Sqlite from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import * as schema from './schema.ts'

export type Db = BetterSQLite3Database<typeof schema>

export interface Database {
  readonly sqlite: Sqlite.Database
  readonly db: Db
  close(): void
}

/** Opens (creating if needed) the SQLite file in WAL mode with a busy timeout, foreign keys on. */
export function openDatabase (file: string): Database {
  // The database holds password hashes and sealed secrets: owner-only from the first byte.
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  if (!existsSync(file)) closeSync(openSync(file, 'wx', 0o600))
  const sqlite = new Sqlite(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('busy_timeout = 5000')
  sqlite.pragma('foreign_keys = ON')
  const db = drizzle(sqlite, { schema })
  return {
    sqlite,
    db,
    close: () => { if (sqlite.open) sqlite.close() }
  }
}
