import { readFileSync } from 'node:fs'
import { sql } from 'drizzle-orm'
import type { MigrationStatus } from '../migrate.ts'
import type { PgDb } from './connection.ts'
import { PG_MIGRATIONS_DIR } from './migrate.ts'

let journal: Array<{ when: number }> | undefined

/**
 * Compares the database with migrations-pg/meta/_journal.json the way drizzle's migrator decides what is pending: by
 * the newest applied migration's timestamp. Its bookkeeping table lives in the schema "drizzle", absent until the
 * first migration runs.
 */
export async function pgMigrationStatus (db: PgDb): Promise<MigrationStatus> {
  journal ??= (JSON.parse(readFileSync(`${PG_MIGRATIONS_DIR}meta/_journal.json`, 'utf8')) as { entries: Array<{ when: number }> }).entries
  const { rows: [table] } = await db.execute<{ present: boolean }>(sql`SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS present`)
  // count() and max() of a bigint come back from pg as strings unless cast.
  const row = table?.present === true
    ? (await db.execute<{ n: number, newest: number | null }>(sql`SELECT count(*)::int AS n, max(created_at)::float8 AS newest FROM drizzle.__drizzle_migrations`)).rows[0]
    : undefined
  const applied = row?.n ?? 0
  const newestExpected = journal.at(-1)?.when ?? 0
  return { applied, expected: journal.length, current: applied >= journal.length && (row?.newest ?? 0) >= newestExpected }
}

/** Readiness: the database answers and every migration is applied. Throws when the database is unreachable. */
export async function pgDatabaseReadiness (db: PgDb): Promise<MigrationStatus> {
  await db.execute(sql`SELECT 1`)
  return await pgMigrationStatus(db)
}
