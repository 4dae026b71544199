import type { AuditLog } from './audit.ts'
import type { DeadlineRead, StoredState } from './engine.ts'
import { DomainError } from './errors.ts'

export const ROLES = ['user', 'helpdesk', 'admin'] as const
export type Role = typeof ROLES[number]

export function isRole (value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value)
}

/** Admins may do what helpdesk staff may do, who may do what users may do. */
export function hasRole (actual: Role, required: Role): boolean {
  return ROLES.indexOf(actual) >= ROLES.indexOf(required)
}

export interface User {
  id: string
  email: string
  displayName: string
  role: Role
  /** E.164; the directory's number when phones are pinned. */
  phone: string | null
  privileged: boolean
  provider: string
  groups: string[]
  disabled: boolean
  /** When MFA became mandatory for this user; null while it is optional. */
  enforcedAt: Date | null
  /** The provider's id for the user (Entra object id, IAM user id `AIDA…`); null for local users. */
  externalId: string | null
  /** Method kinds the provider reports (synced). */
  providerMethods: string[]
  /** Facts the directory sync recorded (users.provider_attributes), e.g. unrecognisedMethods: methods the portal does not know. */
  providerAttributes?: Readonly<Record<string, string | number | boolean | null>>
  /** After a helpdesk reset: until when a first method may be set up again from anywhere. */
  reenrollUntil: Date | null
  /** The language chosen in the portal ('en', 'de'); null: the browser's Accept-Language decides. */
  locale?: string | null
  /** IANA time zone learned from the browser or chosen; null: DEFAULT_TIME_ZONE. */
  timeZone?: string | null
  firstSeenAt: Date
  createdAt: Date
}

/** One row of a helpdesk search. */
export interface UserSummary {
  id: string
  email: string
  displayName: string
  role: Role
  provider: string
  disabled: boolean
}

export interface NewUser {
  email: string
  displayName: string
  role?: Role
  passwordHash?: string | null
  phone?: string | null
  privileged?: boolean
  groups?: string[]
}

/** A row of a user import: creates the user or updates the directory fields of an existing one. */
export interface DirectoryUser {
  email: string
  displayName: string
  phone: string | null
  groups: string[]
  privileged: boolean
}

/**
 * A user with their password hash, for the one place that checks a password (domain/signin.ts). A User carries no
 * hash: the signed-in user is read on every request and handed to every page, and the hash has no business there.
 */
export interface UserCredentials {
  user: User
  passwordHash: string | null
}

export interface UserStore {
  findById(id: string): Promise<User | undefined>
  findByEmail(email: string): Promise<User | undefined>
  /** The user with this (normalised) email and their password hash. */
  findCredentials(email: string): Promise<UserCredentials | undefined>
  create(user: NewUser): Promise<User>
  setRole(id: string, role: Role): Promise<void>
  /** Active (not disabled) users with exactly this role, for alerts. */
  listByRole(role: Role): Promise<User[]>
  /** All rows in one transaction: either every row is written or none. */
  upsertDirectoryUsers(rows: DirectoryUser[]): Promise<{ created: number, updated: number }>
  count(): Promise<number>
  /** Users whose email, name or a word of their name starts with `prefix` (case-insensitive), by email after `after`. */
  search(prefix: string, after: string | null, limit: number): Promise<UserSummary[]>
  setReenrollUntil(userId: string, until: Date | null): Promise<void>
  /** Saves the user's language and/or time zone (undefined leaves one as it is; null clears it). */
  setPreferences(userId: string, preferences: { locale?: string | null, timeZone?: string | null }): Promise<void>
  /** When the portal's own sign-in started demanding MFA of a local user (the local provider's enforcement); null: not. */
  enforcedAt(userId: string): Promise<Date | null>
  setEnforcedAt(userId: string, at: Date | null): Promise<void>
}

/** Runs work atomically across stores (a user change and its audit event commit together or not at all). */
export interface Transactions {
  run<T>(work: () => Promise<T>): Promise<T>
}

/** Sessions of a user are ended when their privileges change, so nobody keeps an old role. */
export interface SessionRevoker {
  revokeAllFor(userId: string): Promise<number>
}

/**
 * A session as the store reads it: its data and, when the row names a user (signed in), that user and where they
 * stand, read in the same statement: every signed-in request needs all three. `user` is undefined once the user is
 * gone, `state` before the engine first assessed them. `deadline` (the user's deadline facts and the live campaigns)
 * only when asked for (SessionReadOptions), and undefined once the user is gone.
 */
export interface SessionRead {
  data: object
  /** The data as stored: the JSON text `data` was parsed from (what the store's set wrote). */
  json: string
  signedIn: { userId: string, user: User | undefined, state: StoredState | undefined, deadline?: DeadlineRead } | null
}

/** What a request reads with its session besides the user and their state. */
export interface SessionReadOptions {
  /** The user's deadline facts and the live campaigns (the home page: the same statement instead of a second one). */
  deadline?: boolean
}

/** Server-side sessions (web/plugins/session.ts), stored as JSON; none is cached in a process. */
export interface SessionStore extends SessionRevoker {
  /** The session, or null when there is none under that id (or it expired before anyone signed in). */
  get(sid: string, options?: SessionReadOptions): Promise<SessionRead | null>
  set(sid: string, session: object): Promise<void>
  destroy(sid: string): Promise<void>
  /** Deletes expired sessions; how many. */
  purgeExpired(): Promise<number>
}

export function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}

// Deliberately simple: one @, something on each side, a dot in the domain, no spaces.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

export function isEmail (value: string): boolean {
  return value.length <= 254 && EMAIL.test(value)
}

export interface Actor {
  id: string | null
  label: string
  ip?: string | null
  userAgent?: string | null
}

export class UserService {
  constructor (
    private readonly users: UserStore,
    private readonly audit: AuditLog,
    private readonly sessions: SessionRevoker,
    private readonly transactions: Transactions
  ) {}

  /** Writes validated import rows and the audit event recording them, atomically. */
  async importDirectoryUsers (rows: DirectoryUser[], details: { file: string, skipped: number }, actor: Actor): Promise<{ created: number, updated: number }> {
    return this.transactions.run(async () => {
      const counts = await this.users.upsertDirectoryUsers(rows)
      await this.audit.append({ action: 'users.imported', actorId: actor.id, actorLabel: actor.label, details: { ...details, ...counts }, ip: actor.ip, userAgent: actor.userAgent })
      return counts
    })
  }

  async createUser (input: NewUser, actor: Actor): Promise<User> {
    const email = normaliseEmail(input.email)
    if (!isEmail(email)) throw new DomainError('invalid_email', `"${input.email}" is not an email address.`, { email: input.email })
    if (input.displayName.trim() === '') throw new DomainError('invalid_display_name', 'A display name is required.')
    if (await this.users.findByEmail(email) !== undefined) {
      throw new DomainError('user_exists', `A user with the email ${email} already exists.`, { email })
    }
    const user = await this.users.create({ ...input, email, displayName: input.displayName.trim() })
    await this.audit.append({
      action: 'user.created', actorId: actor.id, actorLabel: actor.label, subjectUserId: user.id,
      details: { email, role: user.role }, ip: actor.ip, userAgent: actor.userAgent
    })
    return user
  }

  /** Changes a role, records it, and signs the user out everywhere (their sessions carried the old role). */
  async changeRole (userId: string, role: Role, actor: Actor): Promise<void> {
    const user = await this.users.findById(userId)
    if (user === undefined) throw new DomainError('user_not_found', 'No such user.')
    if (user.role === role) return
    await this.users.setRole(userId, role)
    const ended = await this.sessions.revokeAllFor(userId)
    await this.audit.append({
      action: 'user.role_changed', actorId: actor.id, actorLabel: actor.label, subjectUserId: userId,
      details: { from: user.role, to: role, sessionsEnded: ended }, ip: actor.ip, userAgent: actor.userAgent
    })
  }
}
