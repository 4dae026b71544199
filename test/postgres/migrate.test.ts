import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { openPostgres, PostgresConnectionError } from '../../server/db/pg/connection.ts'
import { applyPgMigrations, PG_MIGRATIONS_DIR } from '../../server/db/pg/migrate.ts'
import { postgresForTest } from '../helpers/postgres.ts'

const journal = (JSON.parse(readFileSync(`${PG_MIGRATIONS_DIR}meta/_journal.json`, 'utf8')) as { entries: Array<{ when: number }> }).entries

test('two instances starting together on one database apply each migration exactly once', async (t) => {
  const postgres = await postgresForTest(t)
  const first = await postgres.open({ max: 2, applicationName: 'instance-a' })
  const second = await postgres.open({ max: 2, applicationName: 'instance-b' })

  const outcomes = await Promise.allSettled([applyPgMigrations(first), applyPgMigrations(second)])

  assert.deepEqual(outcomes.map((outcome) => outcome.status), ['fulfilled', 'fulfilled'])
  const { rows } = await first.pool.query<{ created_at: string, times: string }>(
    'SELECT created_at, count(*) AS times FROM drizzle.__drizzle_migrations GROUP BY created_at ORDER BY created_at')
  assert.deepEqual(rows.map((row) => ({ when: Number(row.created_at), times: Number(row.times) })), journal.map(({ when }) => ({ when, times: 1 })))
})

test('starting again on a migrated database changes nothing', async (t) => {
  const database = await (await postgresForTest(t)).open({ max: 2 })
  await applyPgMigrations(database)

  await applyPgMigrations(database)

  const { rows } = await database.pool.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations')
  assert.equal(Number(rows[0].n), journal.length)
})

test('a database that does not exist stops the start with one line naming it, without the password', async (t) => {
  const url = new URL((await postgresForTest(t)).url)
  url.pathname = '/no_such_portal_db'

  const error = await openPostgres(url.toString()).then(() => undefined, (err: unknown) => err)

  assert.ok(error instanceof PostgresConnectionError, String(error))
  assert.match(error.message, /^cannot connect to PostgreSQL database "no_such_portal_db" on [^\n]+:\d+ as "[^"]+": database "no_such_portal_db" does not exist$/)
  if (url.password !== '') assert.ok(!error.message.includes(decodeURIComponent(url.password)), 'the password is not shown')
})

test('a server that does not answer stops the start with one line naming where it was looked for', async () => {
  const error = await openPostgres('postgres://portal:s3cret-pass@127.0.0.1:1/mfa').then(() => undefined, (err: unknown) => err)

  assert.ok(error instanceof PostgresConnectionError, String(error))
  assert.match(error.message, /^cannot connect to PostgreSQL database "mfa" on 127\.0\.0\.1:1 as "portal": .*ECONNREFUSED/)
  assert.doesNotMatch(error.message, /s3cret-pass|\n/)
})

test('a DATABASE_URL that is not a postgres:// URL is refused without echoing it', async () => {
  const error = await openPostgres('mysql://portal:s3cret-pass@db/mfa').then(() => undefined, (err: unknown) => err)

  assert.ok(error instanceof PostgresConnectionError, String(error))
  assert.equal(error.message, 'DATABASE_URL must start with postgres:// (it starts with mysql://)')
})
