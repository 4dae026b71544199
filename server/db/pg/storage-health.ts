import type pg from 'pg'
import type { Clock } from '../../domain/clock.ts'
import type { IntegrityStatus, StorageLog, StorageMonitor, WriteStatus } from '../../domain/storage.ts'

/** The server settings the advice depends on, as `current_setting` gives them ('on' or 'off'). */
export interface VacuumSettings {
  autovacuum: string
  trackCounts: string
}

/**
 * Advice for a server whose autovacuum does not run (it needs both settings on). Every sweep rewrites a row of the
 * engine's queue (`enforcement_jobs`) several times per user and each user's state once; left unvacuumed, the dead
 * rows pile up and the engine's statements read past them, so a long sweep slows as it goes. Measured with
 * `npm run bench -- sweep` (two instances, 100,000 users, one two-core machine): autovacuum off, 134 users a second
 * (the provider's limit, 136) for the first 58,000 users, then 100 a second; on, 119 a second (limit 120) throughout.
 */
export function vacuumAdvice (settings: VacuumSettings): string[] {
  const off = [settings.autovacuum === 'off' ? 'autovacuum' : null, settings.trackCounts === 'off' ? 'track_counts' : null].filter((name) => name !== null)
  if (off.length === 0) return []
  return [`PostgreSQL's autovacuum does not run on this server (${off.map((name) => `${name} = off`).join(', ')}): the engine's job queue and ` +
    'the users\' states are rewritten on every sweep and, never vacuumed, make each sweep slower as it goes. ' +
    'Turn it back on (the default), or run VACUUM ANALYZE enforcement_jobs, user_states after each large sweep.']
}

/**
 * The storage monitor when the database is a PostgreSQL server. Its disk and its pages are the server's to watch
 * (its own log and monitoring; there is no file here to probe or quick_check), and whether it answers is the
 * readiness check's question. So writes and integrity read as fine, and a failure a request reports is logged.
 * What it does check is whether the server vacuums (see vacuumAdvice).
 */
export class PgStorageHealth implements StorageMonitor {
  constructor (private readonly pool: pg.Pool, private readonly clock: Clock) {}

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

  /** Read each time: an operator who turns autovacuum on and reloads the server sees the warning go without a restart. */
  async advice (): Promise<string[]> {
    const { rows: [settings] } = await this.pool.query<VacuumSettings>(
      "SELECT current_setting('autovacuum') AS autovacuum, current_setting('track_counts') AS \"trackCounts\"")
    return vacuumAdvice(settings)
  }
}
