import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Sqlite from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import * as schema from './schema.ts'
import { storageFailureOf } from '../domain/storage.ts'
import { SqliteAccess } from './sqlite-access.ts'

export type Db = BetterSQLite3Database<typeof schema>

export interface Database {
  readonly sqlite: Sqlite.Database
  readonly db: Db
  /** The connection as asynchronous stores share it (transactions that span awaits). */
  readonly access: SqliteAccess
  close(): void
}

export interface OpenOptions {
  /** Only reads (audit verify): nothing is created, changed or migrated, and a read-only file or directory will do. */
  readOnly?: boolean
}

/** The database file cannot be used as it is. The message is one line naming the file and what to do. */
export class DatabaseFileError extends Error {
  constructor (readonly file: string, message: string) {
    super(message)
    this.name = 'DatabaseFileError'
  }
}

// Written into the header of every database this portal creates (PRAGMA application_id), so that a file of its own
// that has no tables yet (a first start cut short) is told apart from somebody else's SQLite file. "MFAR".
const APPLICATION_ID = 0x4d464152
const MIGRATIONS_TABLE = '__drizzle_migrations'

/**
 * Opens the SQLite file in WAL mode with a busy timeout, foreign keys on. A file that does not exist is created; an
 * existing file must be this portal's database: an empty (0-byte) file, a file that is not SQLite and an SQLite
 * database without the portal's tables are refused, never replaced by a new database (which would come up as an
 * empty portal, or a sandbox with demo accounts, in place of the real data).
 */
export function openDatabase (file: string, options: OpenOptions = {}): Database {
  const readOnly = options.readOnly === true
  if (!existsSync(file)) {
    if (readOnly) throw new DatabaseFileError(file, `${file} does not exist: set DATA_DIR (or DATABASE_FILE) to where the portal keeps its database`)
    createDatabaseFile(file)
  } else if (statSync(file).size === 0) {
    throw new DatabaseFileError(file, `${file} is empty (0 bytes), so it holds no portal data: restore the database from a backup, or delete the file to start a new, empty portal`)
  }
  const { sqlite, cleanup } = readOnly ? openForReading(file) : { sqlite: new Sqlite(file, { fileMustExist: true }), cleanup: () => {} }
  try {
    refuseForeign(sqlite, file)
    if (!readOnly) {
      sqlite.pragma('journal_mode = WAL')
      sqlite.pragma('synchronous = NORMAL')
    }
    sqlite.pragma('busy_timeout = 5000')
    sqlite.pragma('foreign_keys = ON')
  } catch (err) {
    sqlite.close()
    cleanup()
    throw err
  }
  const db = drizzle(sqlite, { schema })
  return {
    sqlite,
    db,
    access: new SqliteAccess(sqlite, db),
    close: () => {
      if (sqlite.open) sqlite.close()
      cleanup()
    }
  }
}

/**
 * A new database file, owner-only from the first byte (it will hold password hashes and sealed secrets). It is
 * made under a temporary name and renamed into place once its header is written, so an interrupted first start
 * never leaves an empty file behind under the real name.
 */
function createDatabaseFile (file: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const creating = `${file}.creating`
  rmSync(creating, { force: true })
  closeSync(openSync(creating, 'wx', 0o600))
  const sqlite = new Sqlite(creating)
  try {
    sqlite.pragma(`application_id = ${APPLICATION_ID}`)
  } finally {
    sqlite.close()
  }
  renameSync(creating, file)
}

/** Reading an SQLite file also tells whether it is one: "file is not a database" (SQLITE_NOTADB) comes from here. */
function refuseForeign (sqlite: Sqlite.Database, file: string): void {
  const applicationId = sqlite.pragma('application_id', { simple: true }) as number
  if (applicationId === APPLICATION_ID) return
  // Databases made before the portal marked its files are recognised by the migrations table.
  const migrations = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(MIGRATIONS_TABLE)
  if (migrations === undefined) {
    throw new DatabaseFileError(file, `${file} is an SQLite database, but not mfa-rollout's (it has none of the portal's tables): set DATABASE_FILE to the portal's database, or move this file away to start a new one`)
  }
}

/**
 * Read-only. A WAL reader needs the shared-memory index beside the file; where the directory refuses to hold it
 * (a read-only mount or directory), a private copy of the file and its log is read instead.
 */
function openForReading (file: string): { sqlite: Sqlite.Database, cleanup: () => void } {
  const sqlite = new Sqlite(file, { readonly: true, fileMustExist: true })
  try {
    sqlite.prepare('SELECT count(*) FROM sqlite_master').get()
    return { sqlite, cleanup: () => {} }
  } catch (err) {
    sqlite.close()
    const code = String((err as { code?: unknown }).code)
    if (code !== 'SQLITE_READONLY_DIRECTORY' && code !== 'SQLITE_CANTOPEN') throw err
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'mfa-rollout-read-'))
  const cleanup = () => { rmSync(dir, { recursive: true, force: true }) }
  try {
    const copy = path.join(dir, path.basename(file))
    copyFileSync(file, copy)
    if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`)
    return { sqlite: new Sqlite(copy, { readonly: true, fileMustExist: true }), cleanup }
  } catch (err) {
    cleanup()
    throw err
  }
}

/**
 * One line for an operator when the database cannot be opened, created, migrated or written at start: what is
 * wrong with which file and what to do. Undefined for errors that are not about the file or its storage.
 */
export function explainDatabaseFailure (err: unknown, file: string): string | undefined {
  if (err instanceof DatabaseFileError) return err.message
  const dir = path.dirname(file)
  const code = errorCode(err)
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN') {
    return `cannot use ${file} (${describeCode(code)}): let the user running mfa-rollout read and write ${dir} and the files in it, or set DATA_DIR to a directory it can write`
  }
  if (abandonedBySqlite(err)) {
    return freeBytes(dir) < 1024 * 1024
      ? `cannot write ${file}: the disk is full. Free space on the volume holding ${dir} and start again`
      : `cannot write ${file}: SQLite abandoned the change (an I/O error, or a lock another process held too long). Check the disk holding ${dir} and that nothing else holds the database, then start again`
  }
  switch (storageFailureOf(err)) {
    case 'full':
      return `cannot write ${file}: the disk is full. Free space on the volume holding ${dir} and start again`
    case 'unavailable':
      return `cannot write ${file}: the volume reports an I/O error (${code}). Check the disk holding ${dir}, then start again`
    case 'damaged':
      return code === 'SQLITE_NOTADB'
        ? `${file} is not an SQLite database (it is damaged, or another kind of file): restore it from a backup, or set DATABASE_FILE to the portal's database`
        : `${file} is damaged (${rootMessage(err)}): restore it from a backup`
  }
  return undefined
}

/**
 * SQLite rolls a transaction back by itself on a full disk or an I/O error; drizzle's migrator then tries its own
 * ROLLBACK, which fails with "no transaction is active" and replaces the cause. The volume's free space tells.
 */
function abandonedBySqlite (err: unknown): boolean {
  for (let current = err, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current.message.includes('cannot rollback - no transaction is active')) return true
  }
  return false
}

function freeBytes (dir: string): number {
  try {
    const stats = statfsSync(dir)
    return stats.bavail * stats.bsize
  } catch {
    // Free space unknown: the message then does not claim the disk is full.
    return Infinity
  }
}

/** The code of the error or of what it wraps (drizzle keeps better-sqlite3's error as the cause). */
function errorCode (err: unknown): string {
  for (let current = err, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string') return code
  }
  return ''
}

function rootMessage (err: unknown): string {
  let current = err
  while (current instanceof Error && current.cause instanceof Error) current = current.cause
  return current instanceof Error ? current.message : String(current)
}

function describeCode (code: string): string {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied'
    case 'EROFS':
      return 'read-only file system'
    case 'SQLITE_CANTOPEN':
      return 'cannot create files there'
  }
  return code.startsWith('SQLITE_READONLY') ? 'read-only' : code
}
