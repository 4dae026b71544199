import { AsyncLocalStorage } from 'node:async_hooks'
import { sql, type Placeholder } from 'drizzle-orm'
import type { PgDb } from './connection.ts'

/** A query as drizzle builds it: run as it is, or prepared under a name and run with its placeholders' values. */
interface Preparable<R> {
  execute(): Promise<R>
  prepare(name: string): { execute(values: Record<string, unknown>): Promise<R> }
}

/**
 * The pool, or the transaction the caller is inside: stores ask `current` for where to run each statement, so the
 * statements of one `transaction(work)` share its connection whichever stores they come from.
 */
export class PgAccess {
  /** The open transaction as seen from inside it, and what is to run once it has committed. */
  private readonly inside = new AsyncLocalStorage<{ tx: PgDb, committed: Array<() => void> }>()
  /** Transactions begun and not yet ended (nested ones are part of theirs and not counted). */
  private open = 0

  constructor (readonly db: PgDb) {}

  get current (): PgDb {
    return this.inside.getStore()?.tx ?? this.db
  }

  /**
   * A read made on every request (the session, its user, where they stand), as a function of its one value: outside a
   * transaction, a statement prepared once per connection of the pool; inside one, built on the transaction's own
   * connection, since the pool would not see what the transaction wrote.
   */
  preparedRead<R> (name: string, build: (db: PgDb, value: Placeholder | string) => Preparable<R>): (value: string) => Promise<R> {
    const prepared = build(this.db, sql.placeholder('value')).prepare(name)
    return async (value) => {
      const open = this.inside.getStore()
      return open === undefined ? await prepared.execute({ value }) : await build(open.tx, value).execute()
    }
  }

  /** Runs work as one transaction; a transaction begun inside another is part of it. */
  async transaction<T> (work: () => Promise<T>): Promise<T> {
    if (this.inside.getStore() !== undefined) return await work()
    const committed: Array<() => void> = []
    this.open++
    try {
      const result = await this.db.transaction(async (tx) => await this.inside.run({ tx: tx as unknown as PgDb, committed }, work))
      for (const effect of committed) effect()
      return result
    } finally {
      // With no transaction open nothing needs the context: on Node 20 an enabled AsyncLocalStorage runs a hook for
      // every promise any request makes, so it is switched off until the next transaction (run() switches it on).
      if (--this.open === 0) this.inside.disable()
    }
  }

  /** Runs `effect` once the caller's transaction has committed (never, if it rolls back); now, outside one. */
  afterCommit (effect: () => void): void {
    const open = this.inside.getStore()
    if (open === undefined) effect()
    else open.committed.push(effect)
  }
}
