/**
 * How a failed storage call relates to the storage under it: `full` (no space left on the data volume),
 * `unavailable` (the volume refuses writes: read-only, I/O errors) or `damaged` (the file's contents are corrupt).
 */
export type StorageFailure = 'full' | 'unavailable' | 'damaged'

/**
 * The storage failure behind an error, if any, by the codes the storage adapter's driver (SQLite) and the operating
 * system give it. Wrapped errors are looked through: drizzle keeps better-sqlite3's error as the cause.
 */
export function storageFailureOf (error: unknown): StorageFailure | undefined {
  let current: unknown = error
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = String((current as { code?: unknown }).code ?? '')
    if (code === 'SQLITE_FULL' || code === 'ENOSPC') return 'full'
    if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN') return 'unavailable'
    if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return 'damaged'
    current = current.cause
  }
  return undefined
}

/** Where storage problems are reported: a request's logger, or the process logger at start-up. */
export interface StorageLog {
  error(fields: object, message: string): void
  info(fields: object, message: string): void
}

export type WriteStatus =
  | { ok: true }
  | { ok: false, failure: 'full' | 'unavailable', since: Date }

export interface IntegrityStatus {
  ok: boolean
  checkedAt: Date
  /** What the integrity check found (a few lines), empty when ok. */
  problems: string[]
}

/** The port the web layer reports storage failures to and asks for readiness (db/storage-health.ts implements it). */
export interface StorageMonitor {
  /** A write failed for want of space or a writable volume. */
  writeFailed(failure: 'full' | 'unavailable', log: StorageLog): void
  /** A request met a damaged part of the file. */
  damageSeen(log: StorageLog, error: unknown): void
  /** Whether writes work; while they are known to fail, each call tries again. */
  writes(log: StorageLog): WriteStatus
  /** The last integrity check, run again when it is due. */
  integrity(log?: StorageLog): IntegrityStatus
  /**
   * What the database server's own settings make worse for the portal, as advice to its operator (logged at start,
   * listed by /readyz as warnings): empty when nothing. Not a reason not to serve.
   */
  advice(): Promise<string[]>
}
