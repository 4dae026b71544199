import { lt, sql, eq } from 'drizzle-orm'
import type { ThrottleRows, ThrottleState } from '../../domain/regulation.ts'
import type { PgAccess } from './access.ts'
import { throttles } from './schema.ts'

export class PgThrottleStore implements ThrottleRows {
  constructor (private readonly access: PgAccess) {}

  async read (key: string): Promise<ThrottleState | undefined> {
    const [row] = await this.access.current.select({ failures: throttles.failures, windowStartedAt: throttles.windowStartedAt, lockedUntil: throttles.lockedUntil })
      .from(throttles).where(eq(throttles.key, key))
    return row
  }

  async write (key: string, state: ThrottleState): Promise<void> {
    await this.access.current.insert(throttles).values({ key, ...state })
      .onConflictDoUpdate({ target: throttles.key, set: { failures: state.failures, windowStartedAt: state.windowStartedAt, lockedUntil: state.lockedUntil } })
  }

  async clear (key: string): Promise<void> {
    await this.access.current.delete(throttles).where(eq(throttles.key, key))
  }

  /**
   * One transaction holding a lock per key (transaction-scoped advisory locks, taken in a fixed order so two
   * attempts on overlapping keys cannot deadlock): attempts on the same keys from any instance wait their turn.
   */
  async atomically<T> (keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    return await this.access.transaction(async () => {
      for (const key of [...new Set(keys)].sort()) {
        await this.access.current.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${'throttle:' + key}, 0))`)
      }
      return await fn()
    })
  }

  async purge (before: number): Promise<number> {
    const removed = await this.access.current.delete(throttles)
      .where(lt(sql`coalesce(${throttles.lockedUntil}, ${throttles.windowStartedAt})`, before))
    return removed.rowCount ?? 0
  }
}
