import { randomUUID } from 'node:crypto'
import { and, count, eq, gt, sql, type SQL } from 'drizzle-orm'
import type { Clock } from '../../domain/clock.ts'
import type { DirectoryUser, NewUser, Role, User, UserCredentials, UserStore, UserSummary } from '../../domain/users.ts'
import { userFrom } from '../users.ts'
import type { PgAccess } from './access.ts'
import { userGroups, users } from './schema.ts'

type UserRow = typeof users.$inferSelect

/** What toUser reads from a row, with the user's groups. */
export type UserWithGroups = Omit<UserRow, 'passwordHash' | 'syncedAt' | 'driftFlaggedAt' | 'directoryCreatedAt' | 'updatedAt'> & { groups: string[] }

// The signed-in user is loaded on every request (with their session, pg/sessions.ts): the groups come in the same
// row. COLLATE "C" orders them byte by byte, as SQLite does, whatever the database's collation. No password hash: the
// one read that needs it (findCredentials) adds it.
export const USER_WITH_GROUPS = {
  id: users.id,
  email: users.email,
  displayName: users.displayName,
  role: users.role,
  phone: users.phone,
  privileged: users.privileged,
  provider: users.provider,
  disabled: users.disabled,
  enforcedAt: users.enforcedAt,
  externalId: users.externalId,
  providerMethods: users.providerMethods,
  providerAttributes: users.providerAttributes,
  reenrollUntil: users.reenrollUntil,
  locale: users.locale,
  timeZone: users.timeZone,
  firstSeenAt: users.firstSeenAt,
  createdAt: users.createdAt,
  groups: sql<string[]>`coalesce((SELECT array_agg(${userGroups.groupName} ORDER BY ${userGroups.groupName} COLLATE "C") FROM ${userGroups} WHERE ${userGroups.userId} = ${users.id}), '{}')`
}

export class PgUserStore implements UserStore {
  // Read on every signed-in request: prepared once per connection (PgAccess.preparedRead).
  private readonly byId

  constructor (private readonly access: PgAccess, private readonly clock: Clock) {
    this.byId = access.preparedRead('user_by_id', (db, id) => db.select(USER_WITH_GROUPS).from(users).where(eq(users.id, id)))
  }

  async findById (id: string): Promise<User | undefined> {
    const [row] = await this.byId(id)
    return row === undefined ? undefined : toUser(row)
  }

  async findByEmail (email: string): Promise<User | undefined> {
    return await this.findOne(eq(users.email, email))
  }

  async findCredentials (email: string): Promise<UserCredentials | undefined> {
    const [row] = await this.access.current.select({ ...USER_WITH_GROUPS, passwordHash: users.passwordHash }).from(users).where(eq(users.email, email))
    return row === undefined ? undefined : { user: toUser(row), passwordHash: row.passwordHash }
  }

  async create (input: NewUser): Promise<User> {
    const now = this.clock.now().getTime()
    const id = randomUUID()
    await this.access.transaction(async () => {
      await this.access.current.insert(users).values({
        id,
        email: input.email,
        displayName: input.displayName,
        role: input.role ?? 'user',
        passwordHash: input.passwordHash ?? null,
        phone: input.phone ?? null,
        privileged: input.privileged ?? false,
        firstSeenAt: now,
        createdAt: now,
        updatedAt: now
      })
      await this.insertGroups(id, input.groups ?? [])
    })
    return (await this.findById(id))!
  }

  async setRole (id: string, role: Role): Promise<void> {
    await this.access.current.update(users).set({ role, updatedAt: this.clock.now().getTime() }).where(eq(users.id, id))
  }

  async enforcedAt (userId: string): Promise<Date | null> {
    const [row] = await this.access.current.select({ at: users.enforcedAt }).from(users).where(eq(users.id, userId))
    return row?.at == null ? null : new Date(row.at)
  }

  async setEnforcedAt (userId: string, at: Date | null): Promise<void> {
    await this.access.current.update(users).set({ enforcedAt: at?.getTime() ?? null, updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId))
  }

  async listByRole (role: Role): Promise<User[]> {
    const rows = await this.access.current.select(USER_WITH_GROUPS).from(users).where(and(eq(users.role, role), eq(users.disabled, false)))
    return rows.map(toUser)
  }

  /**
   * One transaction. Each row is inserted unless its email exists (ON CONFLICT waits for another instance's import of
   * the same email to commit), else updated: two imports at once neither fail on the unique email nor create twice.
   */
  async upsertDirectoryUsers (rows: DirectoryUser[]): Promise<{ created: number, updated: number }> {
    const now = this.clock.now().getTime()
    let created = 0
    let updated = 0
    await this.access.transaction(async () => {
      const db = this.access.current
      for (const row of rows) {
        const [inserted] = await db.insert(users).values({
          id: randomUUID(), email: row.email, displayName: row.displayName, phone: row.phone, privileged: row.privileged,
          firstSeenAt: now, createdAt: now, updatedAt: now
        }).onConflictDoNothing({ target: users.email }).returning({ id: users.id })
        let id: string
        if (inserted !== undefined) {
          id = inserted.id
          created++
        } else {
          const [existing] = await db.update(users).set({ displayName: row.displayName, phone: row.phone, privileged: row.privileged, updatedAt: now })
            .where(eq(users.email, row.email)).returning({ id: users.id })
          id = existing.id
          await db.delete(userGroups).where(eq(userGroups.userId, id))
          updated++
        }
        await this.insertGroups(id, row.groups)
      }
    })
    return { created, updated }
  }

  async search (prefix: string, after: string | null, limit: number): Promise<UserSummary[]> {
    const term = prefix.trim().toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)
    // lower() on both: PostgreSQL's LIKE is case-sensitive where SQLite's is not. Emails compare and sort byte by
    // byte (COLLATE "C"), as in SQLite, so the pages follow the same order whatever the database's collation.
    return await this.access.current.select({ id: users.id, email: users.email, displayName: users.displayName, role: users.role, provider: users.provider, disabled: users.disabled })
      .from(users)
      .where(and(
        sql`(lower(${users.email}) LIKE ${term + '%'} ESCAPE '\\' OR lower(${users.displayName}) LIKE ${term + '%'} ESCAPE '\\' OR lower(${users.displayName}) LIKE ${'% ' + term + '%'} ESCAPE '\\')`,
        after === null ? undefined : gt(sql`${users.email} COLLATE "C"`, after)
      ))
      .orderBy(sql`${users.email} COLLATE "C"`).limit(limit)
  }

  async setReenrollUntil (userId: string, until: Date | null): Promise<void> {
    await this.access.current.update(users).set({ reenrollUntil: until?.getTime() ?? null, updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId))
  }

  async setPreferences (userId: string, preferences: { locale?: string | null, timeZone?: string | null }): Promise<void> {
    await this.access.current.update(users).set({ ...preferences, updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId))
  }

  async count (): Promise<number> {
    const [row] = await this.access.current.select({ n: count() }).from(users)
    return row?.n ?? 0
  }

  private async findOne (where: SQL): Promise<User | undefined> {
    const [row] = await this.access.current.select(USER_WITH_GROUPS).from(users).where(where)
    return row === undefined ? undefined : toUser(row)
  }

  private async insertGroups (userId: string, groups: readonly string[]): Promise<void> {
    if (groups.length === 0) return
    await this.access.current.insert(userGroups).values(groups.map((groupName) => ({ userId, groupName })))
  }
}

export function toUser (row: UserWithGroups): User {
  return userFrom(row, row.groups)
}
