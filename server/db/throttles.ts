import type { ThrottleRows, ThrottleState } from '../domain/regulation.ts'
import type { SqliteAccess } from './sqlite-access.ts'

export class SqliteThrottleStore implements ThrottleRows {
  private readonly selectOne
  private readonly upsert
  private readonly remove

  constructor (private readonly access: SqliteAccess) {
    const { sqlite } = access
    this.selectOne = sqlite.prepare('SELECT failures, window_started_at AS windowStartedAt, locked_until AS lockedUntil FROM throttles WHERE key = ?')
    this.upsert = sqlite.prepare(`INSERT INTO throttles (key, failures, window_started_at, locked_until) VALUES (@key, @failures, @windowStartedAt, @lockedUntil)
      ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_started_at = excluded.window_started_at, locked_until = excluded.locked_until`)
    this.remove = sqlite.prepare('DELETE FROM throttles WHERE key = ?')
  }

  async read (key: string): Promise<ThrottleState | undefined> {
    return await this.access.run(() => this.selectOne.get(key) as ThrottleState | undefined)
  }

  async write (key: string, state: ThrottleState): Promise<void> {
    await this.access.run(() => this.upsert.run({ key, ...state }))
  }

  async clear (key: string): Promise<void> {
    await this.access.run(() => this.remove.run(key))
  }

  /** One transaction: SQLite has a single writer, so the keys need no lock of their own. */
  async atomically<T> (_keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    return await this.access.transaction(fn)
  }

  async purge (before: number): Promise<number> {
    return await this.access.run(() => this.access.sqlite.prepare('DELETE FROM throttles WHERE coalesce(locked_until, window_started_at) < ?').run(before).changes)
  }
}
