import { eq, type SQL } from 'drizzle-orm'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import type { Clock } from '../../server/domain/clock.ts'
import type { Role } from '../../server/domain/users.ts'
import { SqliteSessionStore } from '../../server/db/sessions.ts'
import { PgSessionStore } from '../../server/db/pg/sessions.ts'
import type { Connection } from '../helpers/backends.ts'

/** A user row written straight into the connection's database, for the rows of other tables that reference one. */
export async function insertUser (connection: Connection, id: string, fields: { role?: Role, disabled?: boolean } = {}): Promise<void> {
  await insertUserRow(connection, { id, email: `${id}@example.test`, displayName: id, ...fields })
}

export interface AccountRow {
  id: string
  email: string
  provider?: string
  externalId?: string | null
  providerMethods?: string
  providerAttributes?: string
}

/** A directory account's user row (provider, external id, methods), written straight into the connection's dialect. */
export async function insertAccount (connection: Connection, account: AccountRow): Promise<void> {
  await insertUserRow(connection, { displayName: account.email, ...account })
}

type UserFields = Omit<typeof sqliteSchema.users.$inferInsert & typeof pgSchema.users.$inferInsert, 'firstSeenAt' | 'createdAt' | 'updatedAt'>

async function insertUserRow (connection: Connection, fields: UserFields): Promise<void> {
  const row = { firstSeenAt: 0, createdAt: 0, updatedAt: 0, ...fields }
  if (connection.dialect === 'sqlite') connection.database.db.insert(sqliteSchema.users).values(row).run()
  else await connection.database.db.insert(pgSchema.users).values(row)
}

/** What a store may change on a user row. */
export async function readAccount (connection: Connection, id: string): Promise<{ providerMethods: string, updatedAt: number } | undefined> {
  if (connection.dialect === 'sqlite') {
    const { users } = sqliteSchema
    return connection.database.db.select({ providerMethods: users.providerMethods, updatedAt: users.updatedAt }).from(users).where(eq(users.id, id)).get()
  }
  const { users } = pgSchema
  const [row] = await connection.database.db.select({ providerMethods: users.providerMethods, updatedAt: users.updatedAt }).from(users).where(eq(users.id, id))
  return row
}

/**
 * Rows read past the store under test, with SQL both dialects speak, to see what a store left behind. Counts come
 * back as numbers when cast (`CAST(count(*) AS INTEGER)`).
 */
export async function rowsOf<T> (connection: Connection, query: SQL): Promise<T[]> {
  if (connection.dialect === 'sqlite') return connection.database.db.all<T>(query)
  return (await connection.database.db.execute(query)).rows as T[]
}

/** A change made past the store under test (SQL both dialects speak), such as damage done to a row on purpose. */
export async function changeRows (connection: Connection, statement: SQL): Promise<void> {
  if (connection.dialect === 'sqlite') connection.database.db.run(statement)
  else await connection.database.db.execute(statement)
}

/**
 * The session store of the connection's dialect, holding one signed-in session for `userId` under `sid` (idle and
 * absolute timeouts long enough not to matter).
 */
export async function signedInSession (connection: Connection, clock: Clock, sid: string, userId: string): Promise<SqliteSessionStore | PgSessionStore> {
  const timeouts = { idleMs: 3_600_000, absoluteMs: 8 * 3_600_000 }
  const sessions = connection.dialect === 'sqlite' ? new SqliteSessionStore(connection.database.access, clock, timeouts) : new PgSessionStore(connection.access, clock, timeouts)
  const now = clock.now().getTime()
  await sessions.set(sid, { auth: { userId, createdAt: now, lastSeenAt: now } })
  return sessions
}
