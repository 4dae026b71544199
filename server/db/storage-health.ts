import type Sqlite from 'better-sqlite3'
import type { Clock } from '../domain/clock.ts'
import { storageFailureOf, type IntegrityStatus, type StorageLog, type StorageMonitor, type WriteStatus } from '../domain/storage.ts'

// A full disk fails every request; one log line a minute says so without flooding the log it cannot write either.
const LOG_EVERY_MS = 60_000
// quick_check reads the whole file: often enough to notice damage within minutes, rarely enough not to be the load.
const CHECK_EVERY_MS = 10 * 60_000
// After a request met a damaged page, the next readiness check looks again, but not more than once a minute.
const RECHECK_AFTER_DAMAGE_MS = 60_000

/**
 * What the portal knows about the database's storage, for /readyz and the log: whether writes are failing (seen by
 * requests, cleared by the first write that succeeds again) and whether PRAGMA quick_check finds the file intact.
 * It reports; it never retries in a loop or stops the process.
 */
export class StorageHealth implements StorageMonitor {
  private failing: { failure: 'full' | 'unavailable', since: number, loggedAt: number, unlogged: number } | undefined
  private damage: { seenAt: number, loggedAt: number } | undefined
  private checked: IntegrityStatus | undefined

  constructor (private readonly sqlite: Sqlite.Database, private readonly clock: Clock) {}

  /** An embedded file has no server settings to get wrong. */
  async advice (): Promise<string[]> {
    return []
  }

  /** A write failed for want of space or a writable volume: remembered for /readyz, logged at most once a minute. */
  writeFailed (failure: 'full' | 'unavailable', log: StorageLog): void {
    const now = this.clock.now().getTime()
    this.failing ??= { failure, since: now, loggedAt: -Infinity, unlogged: 0 }
    this.failing.failure = failure
    this.failing.unlogged++
    if (now - this.failing.loggedAt < LOG_EVERY_MS) return
    log.error({ storage: failure, file: this.sqlite.name, failedWrites: this.failing.unlogged, since: new Date(this.failing.since).toISOString() },
      failure === 'full'
        ? 'the database cannot be written: its disk is full. Free space on the data volume; the portal recovers by itself (logged at most once a minute)'
        : 'the database cannot be written: its volume refuses writes. Check the data volume; the portal recovers by itself (logged at most once a minute)')
    this.failing.loggedAt = now
    this.failing.unlogged = 0
  }

  /** A write succeeded: if writes were failing, they no longer are, and the log says so once. */
  writeSucceeded (log: StorageLog): void {
    if (this.failing === undefined) return
    log.info({ storage: 'writable', file: this.sqlite.name, since: new Date(this.failing.since).toISOString() }, 'the database can be written again')
    this.failing = undefined
  }

  /** A request met a damaged page: logged at most once a minute, and the next integrity check runs early. */
  damageSeen (log: StorageLog, error: unknown): void {
    const now = this.clock.now().getTime()
    if (this.damage !== undefined && now - this.damage.loggedAt < LOG_EVERY_MS) return
    log.error({ storage: 'damaged', file: this.sqlite.name, err: error }, 'the database file is damaged: restore it from a backup (logged at most once a minute)')
    this.damage = { seenAt: now, loggedAt: now }
  }

  /**
   * Whether writes work. While they are known to fail, each call tries one small write, so readiness returns by
   * itself when space does (an instance taken out of the load balancer gets no requests that could tell it).
   */
  writes (log: StorageLog): WriteStatus {
    if (this.failing === undefined) return { ok: true }
    const outcome = this.tryWrite()
    if (outcome === 'written') {
      this.writeSucceeded(log)
      return { ok: true }
    }
    if (outcome !== 'inconclusive') this.failing.failure = outcome
    return { ok: false, failure: this.failing.failure, since: new Date(this.failing.since) }
  }

  /** PRAGMA quick_check, run at most every ten minutes (sooner after a request met damage); the last result otherwise. */
  integrity (log?: StorageLog): IntegrityStatus {
    const now = this.clock.now().getTime()
    const age = this.checked === undefined ? Infinity : now - this.checked.checkedAt.getTime()
    const damageSince = this.damage !== undefined && this.checked !== undefined && this.damage.seenAt >= this.checked.checkedAt.getTime()
    if (age >= CHECK_EVERY_MS || (damageSince && age >= RECHECK_AFTER_DAMAGE_MS)) {
      this.checked = { checkedAt: new Date(now), ...this.quickCheck() }
      if (!this.checked.ok) {
        log?.error({ storage: 'damaged', file: this.sqlite.name, problems: this.checked.problems },
          'the database file is damaged (PRAGMA quick_check): restore it from a backup; mfa-rollout audit verify shows which audit events are affected')
      }
    }
    return this.checked!
  }

  private quickCheck (): { ok: boolean, problems: string[] } {
    try {
      const lines = this.sqlite.pragma('quick_check(10)', { simple: false }) as Array<{ quick_check: string }>
      const problems = lines.map((line) => line.quick_check).filter((line) => line !== 'ok')
      return { ok: problems.length === 0, problems }
    } catch (err) {
      // A header or schema damaged badly enough makes the check itself fail: that is its answer.
      return { ok: false, problems: [(err as Error).message] }
    }
  }

  /**
   * Writes and removes one session row a page long, in one transaction: it needs a new page and log frames, as
   * real writes do. A lock held by another process is no answer either way (and must not block the event loop);
   * nor is a damaged page, which the integrity check reports.
   */
  private tryWrite (): 'written' | 'inconclusive' | 'full' | 'unavailable' {
    const timeout = this.sqlite.pragma('busy_timeout', { simple: true }) as number
    this.sqlite.pragma('busy_timeout = 0')
    try {
      this.sqlite.transaction(() => {
        this.sqlite.prepare("INSERT INTO sessions (sid, user_id, data, expires_at) VALUES ('storage-probe', NULL, hex(zeroblob(2048)), 0)").run()
        this.sqlite.prepare("DELETE FROM sessions WHERE sid = 'storage-probe'").run()
      }).immediate()
      return 'written'
    } catch (err) {
      const failure = storageFailureOf(err)
      if (failure === 'full' || failure === 'unavailable') return failure
      if (failure === 'damaged' || String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) return 'inconclusive'
      throw err
    } finally {
      this.sqlite.pragma(`busy_timeout = ${timeout}`)
    }
  }
}
