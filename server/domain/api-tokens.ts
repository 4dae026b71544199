import { randomBytes, randomUUID } from 'node:crypto'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { DomainError } from './errors.ts'
import type { KeyedHasher } from './keyed-hash.ts'
import type { Actor } from './users.ts'

/**
 * What a token may do. Each API route names the one scope it needs; `phones:write-privileged` is never enough on its
 * own: it widens phones:write to privileged users (directory administrators, staff), whom a feed's token skips.
 * Tokens are created by administrators only (admin console, with a step-up), so only they can grant it.
 */
export const API_SCOPES = ['phones:write', 'phones:write-privileged', 'status:read', 'compliance:read'] as const
export type ApiScope = typeof API_SCOPES[number]

export const SCOPE_LABELS: Record<ApiScope, string> = {
  'phones:write': 'Set users\' mobile numbers (from an HR or directory feed)',
  'phones:write-privileged': 'Also pre-populate the MFA phone of privileged users, such as directory administrators (with phones:write; grant with care)',
  'status:read': 'Read one user\'s rollout status',
  'compliance:read': 'Read the compliance export'
}

export function isApiScope (value: unknown): value is ApiScope {
  return typeof value === 'string' && (API_SCOPES as readonly string[]).includes(value)
}

/**
 * "mfr_" + 32 random bytes in base64url: the prefix lets secret scanners and people recognise a leaked token;
 * 256 random bits make guessing pointless, so a plain keyed hash (no per-token salt) is safe to look up by.
 */
export const TOKEN_PREFIX = 'mfr_'
const TOKEN_SHAPE = /^mfr_[A-Za-z0-9_-]{43}$/
const HASH_CONTEXT = 'api-token'

export const TOKEN_NAME_MAX = 100
export const TOKEN_EXPIRY_MAX_DAYS = 3650
// last_used_at is written at most this often, so a busy integration does not turn every call into a write.
export const LAST_USED_INTERVAL_MS = 60_000
const DAY_MS = 24 * 3_600_000

export interface ApiToken {
  id: string
  name: string
  scopes: ApiScope[]
  createdBy: string | null
  createdAt: Date
  expiresAt: Date | null
  lastUsedAt: Date | null
  revokedAt: Date | null
}

export type TokenStatus = 'active' | 'expired' | 'revoked'

export function tokenStatus (token: Pick<ApiToken, 'expiresAt' | 'revokedAt'>, now: Date): TokenStatus {
  if (token.revokedAt !== null) return 'revoked'
  if (token.expiresAt !== null && token.expiresAt <= now) return 'expired'
  return 'active'
}

/** Storage port. Only the keyed hash of a token is ever stored. */
export interface ApiTokenStore {
  insert(token: ApiToken, tokenHash: string): Promise<void>
  /** Newest first. */
  list(): Promise<ApiToken[]>
  find(id: string): Promise<ApiToken | undefined>
  findByHash(tokenHash: string): Promise<ApiToken | undefined>
  /** Compare-and-swap: false when the token was already revoked (or does not exist). */
  revoke(id: string, at: Date): Promise<boolean>
  /** Records use, unless a use within the last interval was already recorded. */
  touch(id: string, at: Date, intervalMs: number): Promise<void>
  /** Re-keys a token's hash after an encryption key rotation (see authenticate). */
  rehash(id: string, tokenHash: string): Promise<void>
}

/** Who is calling the API: the token's identity and what it may do. */
export interface ApiCaller {
  tokenId: string
  name: string
  scopes: ApiScope[]
}

export interface NewTokenInput {
  name: string
  scopes: string[]
  /** Null: never expires. */
  expiresInDays: number | null
}

/** What can be wrong with one field of a new token (a form says it in words: locales/…/tokens.json). */
export type TokenProblem = 'name_invalid' | 'name_taken' | 'scopes_required' | 'expiry_invalid'

/** Form problems by field, shown next to each field: in English (`fields`, for logs) and as codes (`problems`). */
export class TokenValidationError extends DomainError {
  constructor (readonly fields: Record<string, string>, readonly problems: Record<string, TokenProblem> = {}) {
    super('invalid_token_request', `Please correct: ${Object.values(fields).join(' ')}`, { fields })
  }
}

export function generateToken (): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url')
}

/**
 * Automation API tokens (DESIGN.md "automation"): created by admins with named scopes, shown once, stored as a
 * keyed hash, optionally expiring, revocable; every creation and revocation is audited.
 */
export class ApiTokenService {
  constructor (
    private readonly store: ApiTokenStore,
    /** The current key first, then keys from before a rotation (tokens hashed under them still work). */
    private readonly hashers: readonly KeyedHasher[],
    private readonly audit: AuditLog,
    private readonly clock: Clock
  ) {}

  async list (): Promise<ApiToken[]> {
    return this.store.list()
  }

  async find (id: string): Promise<ApiToken | undefined> {
    return this.store.find(id)
  }

  /** Returns the token text, which exists nowhere else afterwards: the caller shows it once. */
  async create (input: NewTokenInput, actor: Actor): Promise<{ token: ApiToken, secret: string }> {
    const now = this.clock.now()
    const name = input.name.replace(/\s+/g, ' ').trim()
    const fields: Record<string, string> = {}
    const problems: Record<string, TokenProblem> = {}
    if (name === '' || name.length > TOKEN_NAME_MAX) {
      fields.name = `Give the token a name of up to ${TOKEN_NAME_MAX} characters, such as "HR feed".`
      problems.name = 'name_invalid'
    } else if ((await this.store.list()).some((t) => t.name === name && tokenStatus(t, now) === 'active')) {
      fields.name = 'An active token already has this name. Choose another, so the audit log can tell them apart.'
      problems.name = 'name_taken'
    }
    const scopes = API_SCOPES.filter((scope) => input.scopes.includes(scope))
    if (scopes.length === 0 || scopes.length !== new Set(input.scopes).size) {
      fields.scopes = 'Choose at least one thing the token may do.'
      problems.scopes = 'scopes_required'
    }
    const days = input.expiresInDays
    if (days !== null && (!Number.isInteger(days) || days < 1 || days > TOKEN_EXPIRY_MAX_DAYS)) {
      fields.expiresInDays = `The expiry is a whole number of days from 1 to ${TOKEN_EXPIRY_MAX_DAYS}, or empty for a token that does not expire.`
      problems.expiresInDays = 'expiry_invalid'
    }
    if (Object.keys(fields).length > 0) throw new TokenValidationError(fields, problems)

    const secret = generateToken()
    const token: ApiToken = {
      id: randomUUID(),
      name,
      scopes,
      createdBy: actor.id,
      createdAt: now,
      expiresAt: days === null ? null : new Date(now.getTime() + days * DAY_MS),
      lastUsedAt: null,
      revokedAt: null
    }
    await this.store.insert(token, this.hashers[0].hash(secret, HASH_CONTEXT))
    await this.audit.append({
      action: 'api_token.created', actorId: actor.id, actorLabel: actor.label,
      details: { tokenId: token.id, name, scopes, expiresAt: token.expiresAt?.toISOString() ?? null }, ip: actor.ip, userAgent: actor.userAgent
    })
    return { token, secret }
  }

  async revoke (id: string, actor: Actor): Promise<ApiToken> {
    const token = await this.store.find(id)
    if (token === undefined) throw new DomainError('token_not_found', 'There is no such token.')
    if (!await this.store.revoke(id, this.clock.now())) throw new DomainError('token_revoked', 'This token was already revoked.')
    await this.audit.append({
      action: 'api_token.revoked', actorId: actor.id, actorLabel: actor.label,
      details: { tokenId: id, name: token.name }, ip: actor.ip, userAgent: actor.userAgent
    })
    return (await this.store.find(id))!
  }

  /**
   * The caller behind a presented token, or `invalid_token`. The lookup is by keyed hash, so no comparison ever
   * runs over the secret itself (nothing for a timing attack to measure).
   */
  async authenticate (presented: string): Promise<ApiCaller> {
    if (!TOKEN_SHAPE.test(presented)) throw new DomainError('invalid_token', 'The bearer token is not valid.')
    let token: ApiToken | undefined
    for (const [index, hasher] of this.hashers.entries()) {
      const hash = hasher.hash(presented, HASH_CONTEXT)
      token = await this.store.findByHash(hash)
      if (token === undefined) continue
      // Found under a key from before a rotation: store it under the current key, so the old key can be dropped.
      if (index > 0) await this.store.rehash(token.id, this.hashers[0].hash(presented, HASH_CONTEXT))
      break
    }
    if (token === undefined) throw new DomainError('invalid_token', 'The bearer token is not valid.')
    const now = this.clock.now()
    const status = tokenStatus(token, now)
    if (status === 'revoked') throw new DomainError('invalid_token', 'This token was revoked. Ask an administrator for a new one.', { variant: 'revoked' })
    if (status === 'expired') throw new DomainError('invalid_token', 'This token has expired. Ask an administrator for a new one.', { variant: 'expired' })
    if (token.lastUsedAt === null || now.getTime() - token.lastUsedAt.getTime() >= LAST_USED_INTERVAL_MS) {
      await this.store.touch(token.id, now, LAST_USED_INTERVAL_MS)
    }
    return { tokenId: token.id, name: token.name, scopes: token.scopes }
  }
}

/** The audit actor for changes made through the API: the token's name (its id is in the event's details). */
export function apiActor (caller: ApiCaller, context: { ip?: string | null, userAgent?: string | null } = {}): Actor {
  return { id: null, label: `api-token:${caller.name}`, ip: context.ip ?? null, userAgent: context.userAgent ?? null }
}
