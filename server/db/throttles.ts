import type Sqlite from 'better-sqlite3'
import type { ThrottleState, ThrottleStore } from '../domain/regulation.ts'

export class SqliteThrottleStore implements ThrottleStore {
  private readonly selectOne
  private readonly upsert
  private readonly remove

  constructor (private readonly sqlite: Sqlite.Database) {
    this.selectOne = sqlite.prepare('SELECT failures, window_started_at AS windowStartedAt, locked_until AS lockedUntil FROM throttles WHERE key = ?')
    this.upsert = sqlite.prepare(`INSERT INTO throttles (key, failures, window_started_at, locked_until) VALUES (@key, @failures, @windowStartedAt, @lockedUntil)
      ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_started_at = excluded.window_started_at, locked_until = excluded.locked_until`)
    this.remove = sqlite.prepare('DELETE FROM throttles WHERE key = ?')
  }

  read (key: string): ThrottleState | undefined {
    return this.selectOne.get(key) as ThrottleState | undefined
  }

  write (key: string, state: ThrottleState): void {
    this.upsert.run({ key, ...state })
  }

  clear (key: string): void {
    this.remove.run(key)
  }

  atomically<T> (fn: () => T): T {
    return this.sqlite.transaction(fn).immediate()
  }

  /** Forgets windows and locks that ended before `before` (housekeeping). */
  purge (before: number): number {
    return this.sqlite.prepare('DELETE FROM throttles WHERE coalesce(locked_until, window_started_at) < ?').run(before).changes
  }
}
