import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { sql } from 'drizzle-orm'
import { PgAccess } from '../../server/db/pg/access.ts'
import { openPostgres, type PostgresDatabase } from '../../server/db/pg/connection.ts'
import { PgEngineStore } from '../../server/db/pg/engine.ts'
import { applyPgMigrations } from '../../server/db/pg/migrate.ts'
import { QueueUpkeep, type QueueUpkeepOptions } from '../../server/db/pg/queue-upkeep.ts'
import { freshPostgresDatabase } from '../helpers/postgres.ts'

const JOBS = 60
const NOW = new Date('2026-03-02T10:00:00.000Z')

/**
 * A migrated database with JOBS queued jobs, opened with `options` on every connection (`-c track_counts=off`: a
 * server whose autovacuum cannot run, as this connection sees it).
 */
async function queueOn (t: TestContext, options: string): Promise<PostgresDatabase> {
  const fresh = await freshPostgresDatabase()
  const url = new URL(fresh.url)
  url.searchParams.set('options', options)
  const database = await openPostgres(url.toString())
  t.after(async () => { await database.close(); await fresh.drop() })
  await applyPgMigrations(database)
  await database.db.execute(sql`INSERT INTO enforcement_jobs (id, user_id, action, deadline_version, status, attempts, next_attempt_at, created_at, updated_at)
    SELECT 'job-' || n, 'user-' || n, 'enforce', 0, 'queued', 0, ${NOW.getTime() - 1}::bigint, 0, 0 FROM generate_series(1, ${JOBS}) AS n`)
  return database
}

/** Every job claimed and completed by one engine store with this upkeep: a sweep in small. Its upkeep, settled. */
async function sweep (database: PostgresDatabase, options: QueueUpkeepOptions): Promise<QueueUpkeep> {
  const upkeep = new QueueUpkeep(database.db, options)
  const engine = new PgEngineStore(new PgAccess(database.db), { list: async () => [] }, upkeep)
  const jobs = await engine.claim('sweep-test', JOBS, 60_000, NOW)
  assert.equal(jobs.length, JOBS)
  for (const job of jobs) assert.equal(await engine.complete(job.id, 'sweep-test', NOW), true)
  await upkeep.settled()
  return upkeep
}

/**
 * What the server records of the queue table: its row count as ANALYZE (or VACUUM) last counted it (-1: never), and
 * the oldest transaction whose rows it may still hold unfrozen, which only VACUUM moves on (here, past the
 * migration that created the table: every row in it is younger).
 */
async function tableRecord (database: PostgresDatabase): Promise<{ rows: number, frozenBefore: number }> {
  const { rows: [row] } = await database.db.execute<{ rows: number, frozenBefore: string }>(
    sql`SELECT reltuples::int AS rows, relfrozenxid::text AS "frozenBefore" FROM pg_class WHERE oid = 'enforcement_jobs'::regclass`)
  return { rows: row.rows, frozenBefore: Number(row.frozenBefore) }
}

test('on a server whose autovacuum cannot run, the engine vacuums and analyses its job queue once enough of it was rewritten', async (t) => {
  const database = await queueOn(t, '-c track_counts=off')
  const before = await tableRecord(database)
  assert.equal(before.rows, -1, 'never vacuumed nor analysed')
  // Claiming and completing rewrites each job twice: the last completion is the change that makes a vacuum due.
  const upkeep = await sweep(database, { changesPerVacuum: 2 * JOBS, minIntervalMs: 0 })
  assert.equal(upkeep.vacuumed, 1)
  const after = await tableRecord(database)
  assert.equal(after.rows, JOBS, 'analysed: the planner knows how many jobs there are')
  assert.ok(after.frozenBefore > before.frozenBefore, 'vacuumed: the table was scanned and its horizon moved on')
})

test('on a server that vacuums by itself, the engine leaves its queue to it, and below the threshold it does not vacuum either', async (t) => {
  // Its connections do not count their changes either, so a server that does vacuum leaves this table alone too.
  const database = await queueOn(t, '-c track_counts=off')
  const before = await tableRecord(database)
  const left = await sweep(database, { changesPerVacuum: 2 * JOBS, minIntervalMs: 0, serverVacuums: async () => true })
  assert.equal(left.vacuumed, 0)
  assert.deepEqual(await tableRecord(database), before, 'left for the server to vacuum')
  const below = await sweep(await queueOn(t, '-c track_counts=off'), { changesPerVacuum: 2 * JOBS + 1, minIntervalMs: 0 })
  assert.equal(below.vacuumed, 0)
})

test('the engine vacuums at most once per interval, however much it rewrites', async (t) => {
  const database = await queueOn(t, '-c track_counts=off')
  const upkeep = await sweep(database, { changesPerVacuum: 10, minIntervalMs: 60_000 })
  assert.equal(upkeep.vacuumed, 1, 'the first vacuum, then none for a minute')
})
