import { fileURLToPath } from 'node:url'
import type pg from 'pg'
import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import type { PostgresDatabase } from './connection.ts'

export const PG_MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations-pg/', import.meta.url))

/**
 * The advisory lock that serialises migrations across instances. The portal's lock keys carry "MFAR" in the high
 * 32 bits and a purpose in the low ones (1: migrations), so they never meet another application's keys on a shared
 * server, nor each other.
 */
export const MIGRATION_LOCK_KEY = 0x4d464152_00000001n

/**
 * Applies every migration not yet applied. Instances that start together queue on the advisory lock: the first
 * applies the migrations, the others then find nothing left to do.
 */
export async function applyPgMigrations (database: PostgresDatabase): Promise<void> {
  // One dedicated connection: a session-level advisory lock belongs to the connection that took it.
  const client = await database.pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()])
    await migrate(drizzle(client), { migrationsFolder: PG_MIGRATIONS_DIR })
  } finally {
    await unlockAndRelease(client)
  }
}

async function unlockAndRelease (client: pg.PoolClient): Promise<void> {
  try {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()])
  } catch (err) {
    // The connection is broken: destroying it ends its session, and the lock with it.
    client.release(err instanceof Error ? err : true)
    return
  }
  client.release()
}
