import type { SqliteAccess } from './sqlite-access.ts'
import type { Clock } from '../domain/clock.ts'
import type { SessionRead, SessionReadOptions, SessionStore } from '../domain/users.ts'
import { DEADLINE_BEYOND_USER_WIDTH, deadlineColumnsBeyondUser, deadlineFromUserRow, STORED_STATE_WIDTH, storedStateColumns, storedStateFromColumns, type StoredStateRow } from './engine.ts'
import { USER_WITH_GROUPS_WIDTH, userWithGroupsColumns, userWithGroupsFrom, type UserWithGroupsRow } from './users.ts'

/** What a signed-in session carries. */
export interface SessionAuth {
  userId: string
  createdAt: number
  lastSeenAt: number
  /** When this session last proved a second factor (passkey sign-in, step-up). */
  stepUpAt?: number
  /** Opened with a temporary access pass or an invitation: may only enroll methods and sign out. */
  passSession?: boolean
  /** A pass session ends then (the pass's expiry; an invitation session's hour), ms since epoch. */
  passUntil?: number
  /** What opened the restricted session (unset: a pass). */
  passKind?: 'pass' | 'invitation'
  /** Password accepted, but MFA is enforced for the user: only the second-factor step and sign-out are open. */
  secondFactorPending?: boolean
  /** The second factor owed must be a passkey (staff accounts that hold one). */
  passkeyOnly?: boolean
}

type StoredSession = object & { auth?: SessionAuth }

/**
 * The session's columns, then, packed into one JSON array, the user's (null when the row names none, or they are
 * gone), their state's and (the home page's read) their deadline facts.
 */
type SessionRow = [data: string, expiresAt: number, userId: string | null, packed: string]

/**
 * Server-side sessions in SQLite.
 * A row's expiry is the earlier of its idle and absolute deadlines, so expired rows can be purged
 * by one indexed DELETE; the auth plugin enforces the same deadlines on every request.
 */
export class SqliteSessionStore implements SessionStore {
  private readonly selectOne
  private readonly selectWithDeadline
  private readonly upsert
  private readonly remove
  private readonly removeForUser

  constructor (
    private readonly access: SqliteAccess,
    private readonly clock: Clock,
    private readonly timeouts: { idleMs: number, absoluteMs: number }
  ) {
    const { sqlite } = access
    // Read on every request: the session row, with the user it names and their state (one statement instead of
    // three), as an array (no per-row object with named keys to build). The user's, the state's and (the home page's)
    // the deadline's thirty-odd columns come packed in one JSON array, parsed at once: better-sqlite3 on Node 20 stores
    // each column of an array row through V8's generic property path, which costs more than SQLite building the JSON
    // and V8 parsing it (on Node 22, where better-sqlite3 builds the array at once, the two cost about the same).
    const read = (more: string): string => `SELECT s.data, s.expires_at, s.user_id, json_array(${userWithGroupsColumns('u')}, ${storedStateColumns('st')}${more})
      FROM sessions s LEFT JOIN users u ON u.id = s.user_id LEFT JOIN user_states st ON st.user_id = s.user_id WHERE s.sid = ?`
    this.selectOne = sqlite.prepare<[string], SessionRow>(read('')).raw(true)
    // The home page's: the same with the rest of the user's deadline facts and the live campaigns.
    this.selectWithDeadline = sqlite.prepare<[string], SessionRow>(read(`, ${deadlineColumnsBeyondUser('u')}`)).raw(true)
    this.upsert = sqlite.prepare(`INSERT INTO sessions (sid, user_id, data, expires_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (sid) DO UPDATE SET user_id = excluded.user_id, data = excluded.data, expires_at = excluded.expires_at`)
    this.remove = sqlite.prepare('DELETE FROM sessions WHERE sid = ?')
    this.removeForUser = sqlite.prepare('DELETE FROM sessions WHERE user_id = ?')
  }

  async get (sid: string, options?: SessionReadOptions): Promise<SessionRead | null> {
    return await this.access.run(() => {
      const withDeadline = options?.deadline === true
      const row = (withDeadline ? this.selectWithDeadline : this.selectOne).get(sid)
      // An expired anonymous session is simply gone. An expired signed-in one is handed back once so the
      // auth plugin can tell the user why they were signed out; it then replaces it with a fresh session.
      if (row === undefined || (row[1] <= this.clock.now().getTime() && row[2] === null)) return null
      const json = row[0]
      const data = JSON.parse(json) as StoredSession
      const userId = row[2]
      if (userId === null) return { data, json, signedIn: null }
      const packed = JSON.parse(row[3]) as unknown[]
      const userRow = packed.slice(0, USER_WITH_GROUPS_WIDTH) as UserWithGroupsRow
      const stateAt = USER_WITH_GROUPS_WIDTH
      const stateRow = packed.slice(stateAt, stateAt + STORED_STATE_WIDTH) as StoredStateRow
      const signedIn: NonNullable<SessionRead['signedIn']> = {
        userId,
        // Left joins: no user row reads as a null id, no state row as a null state (a column that is never null).
        user: userRow[0] === null ? undefined : userWithGroupsFrom(userRow),
        state: stateRow[0] === null ? undefined : storedStateFromColumns(stateRow)
      }
      if (withDeadline) {
        const deadlineAt = stateAt + STORED_STATE_WIDTH
        signedIn.deadline = userRow[0] === null ? undefined : deadlineFromUserRow(userRow, packed.slice(deadlineAt, deadlineAt + DEADLINE_BEYOND_USER_WIDTH))
      }
      return { data, json, signedIn }
    })
  }

  async set (sid: string, session: StoredSession): Promise<void> {
    await this.access.run(() => {
      const auth = session.auth
      const now = this.clock.now().getTime()
      const expiresAt = auth === undefined
        ? now + this.timeouts.idleMs
        : Math.min(auth.lastSeenAt + this.timeouts.idleMs, auth.createdAt + this.timeouts.absoluteMs, auth.passUntil ?? Infinity)
      this.upsert.run(sid, auth?.userId ?? null, JSON.stringify(session), expiresAt)
    })
  }

  async destroy (sid: string): Promise<void> {
    await this.access.run(() => this.remove.run(sid))
  }

  async revokeAllFor (userId: string): Promise<number> {
    return await this.access.run(() => this.removeForUser.run(userId).changes)
  }

  async purgeExpired (): Promise<number> {
    return await this.access.run(() => this.access.sqlite.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(this.clock.now().getTime()).changes)
  }
}
