import { eq, lte, sql, type Placeholder } from 'drizzle-orm'
import type { Clock } from '../../domain/clock.ts'
import type { SessionRead, SessionReadOptions, SessionStore } from '../../domain/users.ts'
import type { SessionAuth } from '../sessions.ts'
import type { PgAccess } from './access.ts'
import type { PgDb } from './connection.ts'
import { storedStateFrom } from '../engine.ts'
import { DEADLINE_COLUMNS, deadlineReadOf, STATE_COLUMNS, type DeadlineRow } from './engine.ts'
import { jsonObjectOf } from './json-object.ts'
import { sessions, userStates, users } from './schema.ts'
import { toUser, USER_WITH_GROUPS, type UserWithGroups } from './users.ts'

type StoredSession = object & { auth?: SessionAuth }

/** STATE_COLUMNS as JSON: a StoredState with its times as numbers. */
type StateJson = Parameters<typeof storedStateFrom>[0]

/**
 * Server-side sessions in PostgreSQL, shared by every instance. A row's expiry is the earlier of its idle and absolute
 * deadlines, so expired rows can be purged by one indexed DELETE; the auth plugin enforces the same deadlines on every
 * request.
 */
export class PgSessionStore implements SessionStore {
  // Read on every request, with the user the row names and their state (one query instead of three): prepared once
  // per connection (PgAccess.preparedRead).
  private readonly byId
  private readonly withDeadlineById

  constructor (
    private readonly access: PgAccess,
    private readonly clock: Clock,
    private readonly timeouts: { idleMs: number, absoluteMs: number }
  ) {
    // The user, their state and (the home page's) their deadline facts with the live campaigns come as one JSON object
    // each (jsonObjectOf says why); null where the left join found no row.
    const read = (withDeadline: boolean) => (db: PgDb, sid: Placeholder | string) =>
      db.select({
        data: sessions.data,
        expiresAt: sessions.expiresAt,
        userId: sessions.userId,
        user: sql<UserWithGroups | null>`CASE WHEN ${users.id} IS NULL THEN NULL ELSE ${jsonObjectOf(USER_WITH_GROUPS)} END`,
        state: sql<StateJson | null>`CASE WHEN ${userStates.userId} IS NULL THEN NULL ELSE ${jsonObjectOf(STATE_COLUMNS)} END`,
        deadline: withDeadline ? sql<DeadlineRow | null>`CASE WHEN ${users.id} IS NULL THEN NULL ELSE ${jsonObjectOf(DEADLINE_COLUMNS)} END` : sql<null>`NULL`
      })
        .from(sessions).leftJoin(users, eq(users.id, sessions.userId)).leftJoin(userStates, eq(userStates.userId, sessions.userId))
        .where(eq(sessions.sid, sid))
    this.byId = access.preparedRead('session_by_id', read(false))
    // The home page's: the same with the user's deadline facts and the live campaigns.
    this.withDeadlineById = access.preparedRead('session_with_deadline_by_id', read(true))
  }

  async destroy (sid: string): Promise<void> {
    await this.access.current.delete(sessions).where(eq(sessions.sid, sid))
  }

  async revokeAllFor (userId: string): Promise<number> {
    const removed = await this.access.current.delete(sessions).where(eq(sessions.userId, userId))
    return removed.rowCount ?? 0
  }

  async purgeExpired (): Promise<number> {
    const removed = await this.access.current.delete(sessions).where(lte(sessions.expiresAt, this.clock.now().getTime()))
    return removed.rowCount ?? 0
  }

  async get (sid: string, options?: SessionReadOptions): Promise<SessionRead | null> {
    const withDeadline = options?.deadline === true
    const [row] = withDeadline ? await this.withDeadlineById(sid) : await this.byId(sid)
    // An expired anonymous session is simply gone. An expired signed-in one is handed back once so the
    // auth plugin can tell the user why they were signed out; it then replaces it with a fresh session.
    if (row === undefined || (row.expiresAt <= this.clock.now().getTime() && row.userId === null)) return null
    const data = JSON.parse(row.data) as StoredSession
    if (row.userId === null) return { data, json: row.data, signedIn: null }
    const signedIn: NonNullable<SessionRead['signedIn']> = {
      userId: row.userId,
      user: row.user === null ? undefined : toUser(row.user),
      state: row.state === null ? undefined : storedStateFrom(row.state)
    }
    if (withDeadline) signedIn.deadline = row.deadline === null ? undefined : deadlineReadOf(row.deadline)
    return { data, json: row.data, signedIn }
  }

  async set (sid: string, session: StoredSession): Promise<void> {
    const auth = session.auth
    const now = this.clock.now().getTime()
    const expiresAt = auth === undefined
      ? now + this.timeouts.idleMs
      : Math.min(auth.lastSeenAt + this.timeouts.idleMs, auth.createdAt + this.timeouts.absoluteMs, auth.passUntil ?? Infinity)
    const values = { userId: auth?.userId ?? null, data: JSON.stringify(session), expiresAt }
    await this.access.current.insert(sessions).values({ sid, ...values })
      .onConflictDoUpdate({ target: sessions.sid, set: values })
  }
}
