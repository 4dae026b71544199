import { AsyncLocalStorage } from 'node:async_hooks'
import type { PgDb } from './connection.ts'

/**
 * The pool, or the transaction the caller is inside: stores ask `current` for where to run each statement, so the
 * statements of one `transaction(work)` share its connection whichever stores they come from.
 */
export class PgAccess {
  private readonly inside = new AsyncLocalStorage<PgDb>()

  constructor (readonly db: PgDb) {}

  get current (): PgDb {
    return this.inside.getStore() ?? this.db
  }

  /** Runs work as one transaction; a transaction begun inside another is part of it. */
  async transaction<T> (work: () => Promise<T>): Promise<T> {
    if (this.inside.getStore() !== undefined) return await work()
    return await this.db.transaction(async (tx) => await this.inside.run(tx as unknown as PgDb, work))
  }
}
