import type { Clock } from '../../domain/clock.ts'
import type { IntegrityStatus, StorageLog, StorageMonitor, WriteStatus } from '../../domain/storage.ts'

/**
 * The storage monitor when the database is a PostgreSQL server. Its disk and its pages are the server's to watch
 * (its own log and monitoring; there is no file here to probe or quick_check), and whether it answers is the
 * readiness check's question. So writes and integrity read as fine, and a failure a request reports is logged.
 */
export class PgStorageHealth implements StorageMonitor {
  constructor (private readonly clock: Clock) {}

  writeFailed (failure: 'full' | 'unavailable', log: StorageLog): void {
    log.error({ storage: failure }, 'a database write failed for want of storage on the PostgreSQL server: check the server and its disk')
  }

  damageSeen (log: StorageLog, error: unknown): void {
    log.error({ storage: 'damaged', err: error }, 'the PostgreSQL server reported damaged data: check the server')
  }

  writes (): WriteStatus {
    return { ok: true }
  }

  integrity (): IntegrityStatus {
    return { ok: true, checkedAt: this.clock.now(), problems: [] }
  }
}
