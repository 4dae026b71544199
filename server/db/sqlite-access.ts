import { AsyncLocalStorage } from 'node:async_hooks'
import type Sqlite from 'better-sqlite3'
import type { Db } from './connection.ts'

/**
 * One SQLite connection shared by asynchronous stores. better-sqlite3 runs each statement synchronously, but a
 * transaction that awaits between its statements leaves room for other requests to run theirs on the same connection,
 * inside the open transaction (and lost with it if it rolls back). So a transaction holds a gate: statements from
 * outside it wait until it has ended; statements from inside it (tracked through the async context) go straight on.
 */
export class SqliteAccess {
  /** The open transaction as seen from inside it: what is to run once it has committed. */
  private readonly inside = new AsyncLocalStorage<Array<() => void>>()
  /** Settles when the open transaction ends; undefined while none is open. */
  private open: Promise<void> | undefined

  constructor (readonly sqlite: Sqlite.Database, readonly db: Db) {}

  /** Runs a store's synchronous statements once no transaction of another caller is open. */
  async run<T> (statements: () => T): Promise<T> {
    while (this.open !== undefined && this.inside.getStore() === undefined) await this.open
    return statements()
  }

  /** Runs `effect` once the caller's transaction has committed (never, if it rolls back); now, outside one. */
  afterCommit (effect: () => void): void {
    const pending = this.inside.getStore()
    if (pending === undefined) effect()
    else pending.push(effect)
  }

  /**
   * Runs work as one transaction (BEGIN IMMEDIATE: the write lock is taken first, so another process on the same
   * file waits rather than failing half-way). A transaction begun inside another is part of it.
   */
  async transaction<T> (work: () => Promise<T>): Promise<T> {
    if (this.inside.getStore() !== undefined) return await work()
    while (this.open !== undefined) await this.open
    let ended!: () => void
    this.open = new Promise((resolve) => { ended = resolve })
    const committed: Array<() => void> = []
    try {
      this.sqlite.exec('BEGIN IMMEDIATE')
      try {
        const result = await this.inside.run(committed, work)
        this.sqlite.exec('COMMIT')
        for (const effect of committed) effect()
        return result
      } catch (err) {
        if (this.sqlite.inTransaction) this.sqlite.exec('ROLLBACK')
        throw err
      }
    } finally {
      this.open = undefined
      // Between transactions nothing needs the context: on Node 20 an enabled AsyncLocalStorage runs a hook for every
      // promise any request makes, so it is switched off until the next transaction (run() switches it on again).
      this.inside.disable()
      ended()
    }
  }
}

/**
 * A JSON column's value (one made by json_group_array and the like): text in a plain read; already a value where the
 * read packs its row into one json_array, which embeds such columns as JSON (db/sessions.ts).
 */
export function jsonColumn<T> (value: string | T): T {
  return typeof value === 'string' ? JSON.parse(value) as T : value
}
