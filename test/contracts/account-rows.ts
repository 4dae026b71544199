import { eq } from 'drizzle-orm'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import type { Connection } from '../helpers/backends.ts'

export interface AccountRow {
  id: string
  email: string
  provider?: string
  externalId?: string | null
  providerMethods?: string
  providerAttributes?: string
}

/** A user row for the rows under test to refer to, written straight into the connection's dialect. */
export async function insertAccount (connection: Connection, account: AccountRow): Promise<void> {
  const row = { displayName: account.email, firstSeenAt: 0, createdAt: 0, updatedAt: 0, ...account }
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
