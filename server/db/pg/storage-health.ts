import { sql } from 'drizzle-orm'
import type { Clock } from '../../domain/clock.ts'
import type { IntegrityStatus, StorageLog, StorageMonitor, WriteStatus } from '../../domain/storage.ts'
import type { PgDb } from './connection.ts'

/** The server settings the advice depends on, as `current_setting` gives them ('on' or 'off'). */
export interface VacuumSettings {
  autovacuum: string
  trackCounts: string
}

/** The server's settings as this connection sees them. */
export async function readVacuumSettings (db: PgDb): Promise<VacuumSettings> {
  const { rows: [settings] } = await db.execute<{ autovacuum: string, trackCounts: string }>(
    sql`SELECT current_setting('autovacuum') AS autovacuum, current_setting('track_counts') AS "trackCounts"`)
  return settings
}

/** Whether autovacuum runs: it needs both. */
export function serverVacuums (settings: VacuumSettings): boolean {
  return settings.autovacuum !== 'off' && settings.trackCounts !== 'off'
}

/**
 * Advice for a server whose autovacuum does not run (it needs both settings on). The engine vacuums its own job
 * queue while it sweeps (queue-upkeep.ts says why and what it measured), but the portal's other tables (users'
 * states, sessions) keep every old row version and their statistics go stale until someone vacuums them.
 */
export function vacuumAdvice (settings: VacuumSettings): string[] {
  if (serverVacuums(settings)) return []
  const off = [settings.autovacuum === 'off' ? 'autovacuum' : null, settings.trackCounts === 'off' ? 'track_counts' : null].filter((name) => name !== null)
  return [`PostgreSQL's autovacuum does not run on this server (${off.map((name) => `${name} = off`).join(', ')}): the portal vacuums ` +
    'its job queue itself while it sweeps, but not its other tables (users\' states, sessions), whose old row versions pile up and ' +
    'whose statistics go stale. Turn autovacuum back on (the default), or vacuum the database on a schedule (vacuumdb --analyze).']
}

/**
 * The storage monitor when the database is a PostgreSQL server. Its disk and its pages are the server's to watch
 * (its own log and monitoring; there is no file here to probe or quick_check), and whether it answers is the
 * readiness check's question. So writes and integrity read as fine, and a failure a request reports is logged.
 * What it does check is whether the server vacuums (see vacuumAdvice).
 */
export class PgStorageHealth implements StorageMonitor {
  constructor (private readonly db: PgDb, private readonly clock: Clock) {}

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
    return vacuumAdvice(await readVacuumSettings(this.db))
  }
}
