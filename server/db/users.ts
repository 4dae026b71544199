import { randomUUID } from 'node:crypto'
import { and, count, eq, gt, sql } from 'drizzle-orm'
import type { Clock } from '../domain/clock.ts'
import type { DirectoryUser, NewUser, Role, User, UserCredentials, UserStore, UserSummary } from '../domain/users.ts'
import { userGroups, users } from './schema.ts'
import { jsonColumn, type SqliteAccess } from './sqlite-access.ts'

type UserRow = typeof users.$inferSelect

/** What toUser reads from a row: the provider's methods and attributes as JSON text, or (read packed in a JSON row) parsed. */
type UserFields = Omit<UserRow, 'passwordHash' | 'syncedAt' | 'driftFlaggedAt' | 'directoryCreatedAt' | 'updatedAt' | 'providerMethods' | 'providerAttributes'> & {
  providerMethods: string | string[]
  providerAttributes: string | ProviderAttributes
}

type ProviderAttributes = NonNullable<User['providerAttributes']>

/**
 * A user and their groups in one row, as an array in the order of userWithGroupsColumns (better-sqlite3 builds
 * arrays much faster than objects with this many keys): booleans as 0/1; the groups, the provider's methods and its
 * attributes as JSON, text in a row of their own and parsed already in the session's packed row (db/sessions.ts),
 * where json() marks them as JSON so that the one JSON.parse of the row reads them too (the home page parsed each of
 * them twice before: for the user and for the deadline facts). No password hash: the one read that needs it
 * (findCredentials) adds it.
 */
export type UserWithGroupsRow = [
  id: string, email: string, displayName: string, role: Role, phone: string | null,
  privileged: number, provider: string, disabled: number, enforcedAt: number | null, externalId: string | null,
  providerMethods: string | string[], providerAttributes: string | ProviderAttributes, reenrollUntil: number | null, locale: string | null,
  timeZone: string | null, firstSeenAt: number, createdAt: number, groupNames: string | string[]
]

/**
 * The columns of a UserWithGroupsRow, of the users table under the name `table`: the signed-in user is loaded on
 * every request (with their session, db/sessions.ts), in one statement prepared once, the groups folded into the same
 * row, and no query builder or result mapping in between.
 */
export function userWithGroupsColumns (table: string): string {
  return `${table}.id, ${table}.email, ${table}.display_name, ${table}.role, ${table}.phone, ${table}.privileged,
  ${table}.provider, ${table}.disabled, ${table}.enforced_at, ${table}.external_id, json(${table}.provider_methods), json(${table}.provider_attributes),
  ${table}.reenroll_until, ${table}.locale, ${table}.time_zone, ${table}.first_seen_at, ${table}.created_at,
  (SELECT json_group_array(group_name) FROM (SELECT group_name FROM user_groups WHERE user_id = ${table}.id ORDER BY group_name))`
}

/** How many columns userWithGroupsColumns names. */
export const USER_WITH_GROUPS_WIDTH = 18

const USER_WITH_GROUPS = `SELECT ${userWithGroupsColumns('users')} FROM users`

export class SqliteUserStore implements UserStore {
  private readonly byId
  private readonly byEmail
  private readonly credentialsByEmail
  private readonly groupsOf

  constructor (private readonly access: SqliteAccess, private readonly clock: Clock) {
    const { db, sqlite } = access
    this.byId = sqlite.prepare<[string], UserWithGroupsRow>(`${USER_WITH_GROUPS} WHERE id = ?`).raw(true)
    this.byEmail = sqlite.prepare<[string], UserWithGroupsRow>(`${USER_WITH_GROUPS} WHERE email = ?`).raw(true)
    this.credentialsByEmail = sqlite.prepare<[string], [...UserWithGroupsRow, passwordHash: string | null]>(
      `SELECT ${userWithGroupsColumns('users')}, users.password_hash FROM users WHERE email = ?`).raw(true)
    this.groupsOf = db.select({ name: userGroups.groupName }).from(userGroups).where(eq(userGroups.userId, sql.placeholder('id'))).prepare()
  }

  async findById (id: string): Promise<User | undefined> {
    return await this.access.run(() => this.findByIdNow(id))
  }

  private findByIdNow (id: string): User | undefined {
    const row = this.byId.get(id)
    return row === undefined ? undefined : userWithGroupsFrom(row)
  }

  async findByEmail (email: string): Promise<User | undefined> {
    return await this.access.run(() => {
      const row = this.byEmail.get(email)
      return row === undefined ? undefined : userWithGroupsFrom(row)
    })
  }

  async findCredentials (email: string): Promise<UserCredentials | undefined> {
    return await this.access.run(() => {
      const row = this.credentialsByEmail.get(email)
      return row === undefined ? undefined : { user: userWithGroupsFrom(row), passwordHash: row[USER_WITH_GROUPS_WIDTH] }
    })
  }

  async create (input: NewUser): Promise<User> {
    return await this.access.run(() => {
      const now = this.clock.now().getTime()
      const id = randomUUID()
      this.access.db.transaction((tx) => {
        tx.insert(users).values({
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
        }).run()
        for (const groupName of input.groups ?? []) tx.insert(userGroups).values({ userId: id, groupName }).run()
      })
      return this.findByIdNow(id)!
    })
  }

  async setRole (id: string, role: Role): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(users).set({ role, updatedAt: this.clock.now().getTime() }).where(eq(users.id, id)).run()
    })
  }

  async enforcedAt (userId: string): Promise<Date | null> {
    return await this.access.run(() => {
      const row = this.access.db.select({ at: users.enforcedAt }).from(users).where(eq(users.id, userId)).get()
      return row?.at == null ? null : new Date(row.at)
    })
  }

  async setEnforcedAt (userId: string, at: Date | null): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(users).set({ enforcedAt: at?.getTime() ?? null, updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId)).run()
    })
  }

  async listByRole (role: Role): Promise<User[]> {
    return await this.access.run(() => {
      return this.access.db.select().from(users).where(and(eq(users.role, role), eq(users.disabled, false))).all().map((row) => this.toUser(row))
    })
  }

  async upsertDirectoryUsers (rows: DirectoryUser[]): Promise<{ created: number, updated: number }> {
    return await this.access.run(() => {
      const now = this.clock.now().getTime()
      let created = 0
      let updated = 0
      this.access.db.transaction((tx) => {
        for (const row of rows) {
          const existing = tx.select({ id: users.id }).from(users).where(eq(users.email, row.email)).get()
          let id: string
          if (existing === undefined) {
            id = randomUUID()
            tx.insert(users).values({
              id, email: row.email, displayName: row.displayName, phone: row.phone, privileged: row.privileged,
              firstSeenAt: now, createdAt: now, updatedAt: now
            }).run()
            created++
          } else {
            id = existing.id
            tx.update(users).set({ displayName: row.displayName, phone: row.phone, privileged: row.privileged, updatedAt: now })
              .where(eq(users.id, id)).run()
            tx.delete(userGroups).where(eq(userGroups.userId, id)).run()
            updated++
          }
          for (const groupName of row.groups) tx.insert(userGroups).values({ userId: id, groupName }).run()
        }
      })
      return { created, updated }
    })
  }

  async search (prefix: string, after: string | null, limit: number): Promise<UserSummary[]> {
    return await this.access.run(() => {
      const term = prefix.trim().toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)
      // Emails are stored lower-case, so their prefix is an index range; names are matched on any word.
      return this.access.db.select({ id: users.id, email: users.email, displayName: users.displayName, role: users.role, provider: users.provider, disabled: users.disabled })
        .from(users)
        .where(and(
          sql`(${users.email} LIKE ${term + '%'} ESCAPE '\\' OR lower(${users.displayName}) LIKE ${term + '%'} ESCAPE '\\' OR lower(${users.displayName}) LIKE ${'% ' + term + '%'} ESCAPE '\\')`,
          after === null ? undefined : gt(users.email, after)
        ))
        .orderBy(users.email).limit(limit).all()
    })
  }

  async setReenrollUntil (userId: string, until: Date | null): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(users).set({ reenrollUntil: until?.getTime() ?? null, updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId)).run()
    })
  }

  async setPreferences (userId: string, preferences: { locale?: string | null, timeZone?: string | null }): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(users).set({ ...preferences, updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId)).run()
    })
  }

  async count (): Promise<number> {
    return await this.access.run(() => {
      return this.access.db.select({ n: count() }).from(users).get()?.n ?? 0
    })
  }

  private toUser (row: UserFields, groups?: string[]): User {
    return userFrom(row, groups ?? this.groupsOf.all({ id: row.id }).map((g) => g.name))
  }
}

/** A UserWithGroupsRow (or a row that starts with one) as the domain's User. */
export function userWithGroupsFrom (row: readonly [...UserWithGroupsRow, ...unknown[]]): User {
  const [id, email, displayName, role, phone, privileged, provider, disabled, enforcedAt, externalId,
    providerMethods, providerAttributes, reenrollUntil, locale, timeZone, firstSeenAt, createdAt, groupNames] = row
  return userFrom({
    id, email, displayName, role, phone, privileged: privileged === 1, provider, disabled: disabled === 1,
    enforcedAt, externalId, providerMethods, providerAttributes, reenrollUntil, locale, timeZone, firstSeenAt, createdAt
  }, jsonColumn(groupNames))
}

/** A users row (either dialect: the twin schemas give it one shape) and the user's groups, as the domain's User. */
export function userFrom (row: UserFields, groups: string[]): User {
  return {
    id: row.id,
    email: row.email,
    displayName: row.displayName,
    role: row.role,
    phone: row.phone,
    privileged: row.privileged,
    provider: row.provider,
    disabled: row.disabled,
    enforcedAt: row.enforcedAt === null ? null : new Date(row.enforcedAt),
    externalId: row.externalId,
    providerMethods: jsonColumn(row.providerMethods),
    providerAttributes: jsonColumn(row.providerAttributes),
    reenrollUntil: row.reenrollUntil === null ? null : new Date(row.reenrollUntil),
    locale: row.locale,
    timeZone: row.timeZone,
    groups,
    firstSeenAt: new Date(row.firstSeenAt),
    createdAt: new Date(row.createdAt)
  }
}
