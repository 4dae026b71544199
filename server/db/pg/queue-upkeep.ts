import { sql } from 'drizzle-orm'
import type { PgDb } from './connection.ts'
import { readVacuumSettings, serverVacuums } from './storage-health.ts'

/** Rows of the queue written (queued, claimed, finished, put back) between two of the engine's vacuums, at least. */
const CHANGES_PER_VACUUM = 5_000
/** The least time between two vacuums by one instance (a vacuum of a 100,000-job queue takes about 0.4 s). */
const MIN_INTERVAL_MS = 30_000
/** How long the server's answer to "does autovacuum run?" is kept: an operator may change it and reload. */
const SETTINGS_KEPT_MS = 10 * 60_000

export interface QueueUpkeepOptions {
  changesPerVacuum?: number
  minIntervalMs?: number
  /** Whether the server vacuums by itself; by default its settings, read at most every ten minutes. */
  serverVacuums?: () => Promise<boolean>
}

/**
 * Keeps the engine's job queue (`enforcement_jobs`) vacuumed while a sweep runs, when the server will not do it
 * (autovacuum off, or track_counts off, which autovacuum needs). Every job's row is written at least three times
 * (queued, claimed, then done or put back), and PostgreSQL keeps each old version until a vacuum: unvacuumed, every
 * claim of the next job reads past all of them, and a long sweep slows as it goes. Measured with `npm run bench --
 * sweep` (two instances, 100,000 users) on a server without autovacuum: 134 users a second for the first 58,000,
 * then 100 (achieved ratio 0.857); with this upkeep, the provider's limit throughout (0.993; 0.995 with a VACUUM of
 * this one table every 30 s from a shell). It runs in the background, one at a time per instance, and SKIP_LOCKED passes over the table
 * while another instance (or the server) vacuums it. The rest of the portal's tables change slowly; the operator is
 * still told to turn autovacuum on (PgStorageHealth.advice).
 */
export class QueueUpkeep {
  private changes = 0
  private lastAt = -Infinity
  private running: Promise<void> | undefined
  private settings: { vacuums: boolean, readAt: number } | undefined
  private readonly changesPerVacuum: number
  private readonly minIntervalMs: number
  private readonly vacuumsItself: () => Promise<boolean>
  /** Vacuums this instance has run. */
  vacuumed = 0

  constructor (private readonly db: PgDb, options: QueueUpkeepOptions = {}) {
    this.changesPerVacuum = options.changesPerVacuum ?? CHANGES_PER_VACUUM
    this.minIntervalMs = options.minIntervalMs ?? MIN_INTERVAL_MS
    this.vacuumsItself = options.serverVacuums ?? (async () => await this.serverSettingsVacuum())
  }

  /** `count` rows of the queue were written: starts a vacuum in the background when it is due. */
  changed (count: number): void {
    this.changes += count
    if (this.changes < this.changesPerVacuum || this.running !== undefined || Date.now() - this.lastAt < this.minIntervalMs) return
    this.changes = 0
    this.lastAt = Date.now()
    this.running = this.vacuum()
      .catch((err: Error) => { process.emitWarning(`the engine's job queue could not be vacuumed: ${err.message}`, 'PostgresMaintenanceWarning') })
      .finally(() => { this.running = undefined })
  }

  /** Waits for a vacuum in progress, so that closing the pool does not cut it off. */
  async settled (): Promise<void> {
    await this.running
  }

  private async vacuum (): Promise<void> {
    if (await this.vacuumsItself()) return
    // On the pool, never in a transaction (VACUUM cannot run in one).
    await this.db.execute(sql`VACUUM (ANALYZE, SKIP_LOCKED) enforcement_jobs`)
    this.vacuumed++
  }

  private async serverSettingsVacuum (): Promise<boolean> {
    if (this.settings === undefined || Date.now() - this.settings.readAt > SETTINGS_KEPT_MS) {
      this.settings = { vacuums: serverVacuums(await readVacuumSettings(this.db)), readAt: Date.now() }
    }
    return this.settings.vacuums
  }
}
