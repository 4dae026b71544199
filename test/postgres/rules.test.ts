import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import Sqlite from 'better-sqlite3'
import { eq } from 'drizzle-orm'
import { drizzle as sqliteDrizzle } from 'drizzle-orm/better-sqlite3'
import * as sqliteSchema from '../../server/db/schema.ts'
import { applyMigrations } from '../../server/db/migrate.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import type { PostgresDatabase } from '../../server/db/pg/connection.ts'
import { applyPgMigrations } from '../../server/db/pg/migrate.ts'
import { postgresForTest } from '../helpers/postgres.ts'

async function migratedPostgres (t: TestContext): Promise<PostgresDatabase> {
  const database = await (await postgresForTest(t)).open({ max: 2 })
  await applyPgMigrations(database)
  return database
}

function migratedSqlite (t: TestContext) {
  const sqlite = new Sqlite(':memory:')
  t.after(() => sqlite.close())
  const db = sqliteDrizzle(sqlite, { schema: sqliteSchema })
  applyMigrations(db)
  return db
}

const auditEvent = { id: 1, at: '2026-01-01T00:00:00.000Z', action: 'user.created', details: '{"by":"test"}', prevHash: '0'.repeat(64), hash: 'a'.repeat(64) }

function errorText (err: unknown): string {
  return err instanceof Error ? `${err.message} ${err.cause instanceof Error ? err.cause.message : ''}` : String(err)
}

test('the audit log refuses to change or remove an event on PostgreSQL, with the words SQLite uses', async (t) => {
  const sqlite = migratedSqlite(t)
  sqlite.insert(sqliteSchema.auditEvents).values(auditEvent).run()
  const sqliteRefusals = [
    () => sqlite.update(sqliteSchema.auditEvents).set({ action: 'user.deleted' }).where(eq(sqliteSchema.auditEvents.id, 1)).run(),
    () => sqlite.delete(sqliteSchema.auditEvents).where(eq(sqliteSchema.auditEvents.id, 1)).run()
  ]
  for (const attempt of sqliteRefusals) assert.throws(attempt, /^SqliteError: audit_events is append-only$/)

  const { db, pool } = await migratedPostgres(t)
  await db.insert(pgSchema.auditEvents).values(auditEvent)
  const pgAttempts = [
    () => db.update(pgSchema.auditEvents).set({ action: 'user.deleted' }).where(eq(pgSchema.auditEvents.id, 1)),
    () => db.delete(pgSchema.auditEvents).where(eq(pgSchema.auditEvents.id, 1)),
    () => pool.query('TRUNCATE audit_events')
  ]
  for (const attempt of pgAttempts) {
    await assert.rejects(async () => { await attempt() }, (err) => /audit_events is append-only/.test(errorText(err)))
  }

  assert.deepEqual(await db.select().from(pgSchema.auditEvents), [{ ...auditEvent, actorId: null, actorLabel: null, subjectUserId: null, ip: null, userAgent: null }])
})

test('a person has at most one pending approval request of a kind, while decided ones pile up', async (t) => {
  const { db } = await migratedPostgres(t)
  const person = { firstSeenAt: 1, createdAt: 1, updatedAt: 1 }
  await db.insert(pgSchema.users).values([
    { id: 'u1', email: 'user@example.test', displayName: 'User', ...person },
    { id: 'a1', email: 'admin@example.test', displayName: 'Admin', role: 'admin', ...person }
  ])
  const request = (id: string, status: 'pending' | 'refused') =>
    ({ id, userId: 'u1', kind: 'pass' as const, reason: 'lost phone', requestedBy: 'a1', requestedAt: 1, expiresAt: 2, status })
  await db.insert(pgSchema.approvalRequests).values([request('r1', 'refused'), request('r2', 'refused'), request('r3', 'pending')])

  await assert.rejects(async () => { await db.insert(pgSchema.approvalRequests).values(request('r4', 'pending')) },
    (err) => /approval_requests_one_pending/.test(errorText(err)))

  const kept = await db.select({ id: pgSchema.approvalRequests.id }).from(pgSchema.approvalRequests).orderBy(pgSchema.approvalRequests.id)
  assert.deepEqual(kept.map((row) => row.id), ['r1', 'r2', 'r3'])
})

test('rows without an id get the next one, as SQLite\'s row ids do, and times past 2038 survive', async (t) => {
  const { db } = await migratedPostgres(t)
  const farFuture = Date.UTC(2100, 0, 1)

  const ids = await db.insert(pgSchema.outbox).values([
    { channel: 'email', recipient: 'a@example.test', bodyText: 'one', createdAt: farFuture },
    { channel: 'sms', recipient: '+15550100', bodyText: 'two', createdAt: farFuture }
  ]).returning({ id: pgSchema.outbox.id, createdAt: pgSchema.outbox.createdAt })

  assert.deepEqual(ids, [{ id: 1, createdAt: farFuture }, { id: 2, createdAt: farFuture }])
})
