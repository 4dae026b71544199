import { eq, lte } from 'drizzle-orm'
import type { Clock } from '../../domain/clock.ts'
import type { SessionRead, SessionReadOptions, SessionStore } from '../../domain/users.ts'
import type { SessionAuth } from '../sessions.ts'
import type { PgAccess } from './access.ts'
import { storedStateFrom } from '../engine.ts'
import { DEADLINE_COLUMNS, deadlineReadOf, STATE_COLUMNS, type DeadlineRow } from './engine.ts'
import { sessions, userStates, users } from './schema.ts'
import { toUser, USER_WITH_GROUPS, type UserWithGroups } from './users.ts'

type StoredSession = object & { auth?: SessionAuth }

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
    this.byId = access.preparedRead('session_by_id', (db, sid) =>
      db.select({ data: sessions.data, expiresAt: sessions.expiresAt, userId: sessions.userId, user: USER_WITH_GROUPS, state: STATE_COLUMNS })
        .from(sessions).leftJoin(users, eq(users.id, sessions.userId)).leftJoin(userStates, eq(userStates.userId, sessions.userId))
        .where(eq(sessions.sid, sid)))
    // The home page's: the same with the user's deadline facts and the live campaigns.
    this.withDeadlineById = access.preparedRead('session_with_deadline_by_id', (db, sid) =>
      db.select({
        data: sessions.data, expiresAt: sessions.expiresAt, userId: sessions.userId, user: USER_WITH_GROUPS, state: STATE_COLUMNS, deadline: DEADLINE_COLUMNS
      })
        .from(sessions).leftJoin(users, eq(users.id, sessions.userId)).leftJoin(userStates, eq(userStates.userId, sessions.userId))
        .where(eq(sessions.sid, sid)))
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
      // Left joins: no user row or no state row reads as null (drizzle) or as null columns (the groups are never null).
      user: row.user?.id == null ? undefined : toUser(row.user as UserWithGroups),
      state: row.state === null ? undefined : storedStateFrom(row.state)
    }
    if (withDeadline) {
      const { deadline } = row as typeof row & { deadline: DeadlineRow | null }
      signedIn.deadline = deadline === null ? undefined : deadlineReadOf(deadline)
    }
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
