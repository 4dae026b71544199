import type pg from 'pg'
import type { Leadership } from '../../domain/leadership.ts'

/**
 * The scheduler's leader among instances on one PostgreSQL: whoever holds a session-level advisory lock ("MFAR" in
 * the high 32 bits, 3 in the low ones) on a connection of its own. A leader that dies loses its connection and with
 * it the lock, at once; the others try again every `retryMs`, so one of them leads within that interval.
 */
export const LEADER_LOCK_KEY = 0x4d464152_00000003n

export function postgresLeadership (pool: pg.Pool, instance: string, retryMs: number, log: { warn(fields: object, message: string): void }): Leadership {
  let client: pg.PoolClient | undefined
  let leading = false
  let stopped = false
  const lose = (err: unknown): void => {
    if (leading) log.warn({ err: (err as Error).message }, 'this instance lost the scheduler lead (its database connection ended)')
    leading = false
    client?.release(true)
    client = undefined
  }
  const attempt = async (): Promise<void> => {
    if (stopped || leading) return
    try {
      client ??= await pool.connect()
      const held = client
      held.once('error', lose)
      const { rows } = await held.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [LEADER_LOCK_KEY.toString()])
      held.removeListener('error', lose)
      leading = rows[0]?.locked === true
      if (leading) held.on('error', lose)
    } catch (err) {
      lose(err)
    }
  }
  void attempt()
  const timer = setInterval(() => { void attempt() }, retryMs)
  timer.unref()
  return {
    instance,
    isLeader: () => leading,
    async stop () {
      stopped = true
      clearInterval(timer)
      if (client !== undefined) {
        // Releasing the connection ends its session, and the lock with it: another instance takes over.
        client.release(true)
        client = undefined
      }
      leading = false
    }
  }
}
