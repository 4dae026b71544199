import { randomBytes } from 'node:crypto'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { DomainError } from './errors.ts'
import type { KeyedHasher } from './keyed-hash.ts'
import type { Regulator, ThrottlePolicy } from './regulation.ts'
import { lockedOutError, type RequestContext } from './signin.ts'
import { normaliseEmail, type Actor, type User, type UserStore } from './users.ts'

/** No 0/O, 1/I/L: passes are read out over the phone. 31 symbols, 12+ characters ≈ 60 bits. */
export const PASS_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789'
export const PASS_LENGTH = 12

export interface AccessPassRecord {
  id: string
  userId: string
  passHash: string
  oneTime: boolean
  expiresAt: Date
  usedAt: Date | null
}

export interface AccessPassStore {
  /** Revokes the user's earlier passes and stores the new one (one active pass per user). */
  replace(pass: Omit<AccessPassRecord, 'usedAt'> & { createdBy: string | null, createdAt: Date }): Promise<void>
  activeFor(userId: string, now: Date): Promise<AccessPassRecord | undefined>
  /** Marks a one-time pass used (compare-and-swap); false when another request used it first. */
  consume(id: string, at: Date): Promise<boolean>
}

/** `length` characters drawn uniformly from `alphabet` (random bytes beyond the last whole multiple are skipped, so no bias). */
export function randomCode (alphabet: string, length: number): string {
  let out = ''
  while (out.length < length) {
    for (const byte of randomBytes(32)) {
      if (byte < 256 - (256 % alphabet.length) && out.length < length) out += alphabet[byte % alphabet.length]
    }
  }
  return out
}

export function generatePass (): string {
  return randomCode(PASS_ALPHABET, PASS_LENGTH)
}

/** Passes as people type them: case, spaces and dashes do not matter. */
export function normalisePass (input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '')
}

const PASS_POLICY: ThrottlePolicy = { maxFailures: 5, windowMs: 15 * 60_000, lockoutMs: 15 * 60_000 }

/**
 * Temporary access passes: issued by the helpdesk (or tests, until that console exists), shown once, stored as a
 * keyed hash. Signing in with one opens a restricted session that can only enroll methods.
 */
export class AccessPassService {
  constructor (
    private readonly passes: AccessPassStore,
    private readonly users: UserStore,
    private readonly hasher: KeyedHasher,
    private readonly regulator: Regulator,
    private readonly audit: AuditLog,
    private readonly clock: Clock
  ) {}

  async issue (user: User, options: { lifetimeMinutes: number, oneTime: boolean, reason?: string }, actor: Actor): Promise<{ pass: string, expiresAt: Date }> {
    if (actor.id === user.id) throw new DomainError('self_issue', 'You cannot issue a temporary access pass to yourself.')
    const pass = generatePass()
    const id = randomBytes(16).toString('hex')
    const now = this.clock.now()
    const expiresAt = new Date(now.getTime() + options.lifetimeMinutes * 60_000)
    await this.passes.replace({ id, userId: user.id, passHash: this.hasher.hash(pass, `pass:${id}`), oneTime: options.oneTime, expiresAt, createdBy: actor.id, createdAt: now })
    await this.audit.append({ action: 'pass.issued', actorId: actor.id, actorLabel: actor.label, subjectUserId: user.id, details: { lifetimeMinutes: options.lifetimeMinutes, oneTime: options.oneTime, expiresAt: expiresAt.toISOString(), reason: options.reason }, ip: actor.ip, userAgent: actor.userAgent })
    return { pass, expiresAt }
  }

  /**
   * Whether text typed into the password box is this account's active pass, so the sign-in page can point the
   * person to "I have an access pass". Nothing is used up, and it does not weaken either check: it runs only after
   * the password was refused (and so counted), only for pass-shaped text, and a miss counts against the same pass
   * lockout as a wrong pass at /login/pass.
   */
  async isActivePass (emailInput: string, input: string): Promise<boolean> {
    const candidate = normalisePass(input)
    if (candidate.length !== PASS_LENGTH || [...candidate].some((c) => !PASS_ALPHABET.includes(c))) return false
    const email = normaliseEmail(emailInput).slice(0, 254)
    const key = `pass:account:${email}`
    if ((await this.regulator.check(key)).locked) return false
    const user = await this.users.findByEmail(email)
    const pass = user === undefined || user.disabled ? undefined : await this.passes.activeFor(user.id, this.clock.now())
    if (pass !== undefined && this.hasher.matches(candidate, `pass:${pass.id}`, pass.passHash)) return true
    await this.regulator.fail(key, PASS_POLICY)
    return false
  }

  /**
   * Signs in with email + pass. Same message for every failure; attempts are regulated per account.
   * Returns when the pass expires: the session it opens must end then too.
   */
  async signIn (emailInput: string, passInput: string, context: RequestContext): Promise<{ user: User, expiresAt: Date }> {
    const email = normaliseEmail(emailInput).slice(0, 254)
    const key = `pass:account:${email}`
    const meta = { ip: context.ip, userAgent: context.userAgent }
    const verdict = await this.regulator.check(key)
    if (verdict.locked) throw lockedOutError(verdict.until, this.clock.now())
    const user = await this.users.findByEmail(email)
    const now = this.clock.now()
    const pass = user === undefined ? undefined : await this.passes.activeFor(user.id, now)
    const ok = user !== undefined && !user.disabled && pass !== undefined && this.hasher.matches(normalisePass(passInput), `pass:${pass.id}`, pass.passHash)
    if (!ok) {
      const failed = await this.regulator.fail(key, PASS_POLICY)
      await this.audit.append({ action: 'pass.signin_failure', actorLabel: email, subjectUserId: user?.id ?? null, details: {}, ...meta })
      if (failed.justLocked) await this.audit.append({ action: 'pass.lockout', actorLabel: email, subjectUserId: user?.id ?? null, details: {}, ...meta })
      if (failed.locked) throw lockedOutError(failed.until, now)
      throw new DomainError('invalid_pass', 'That email and access pass do not match an active pass. Check both, or ask the helpdesk for a new pass.')
    }
    if (pass.oneTime && !await this.passes.consume(pass.id, now)) {
      throw new DomainError('invalid_pass', 'That email and access pass do not match an active pass. Check both, or ask the helpdesk for a new pass.')
    }
    await this.regulator.reset(key)
    await this.audit.append({ action: 'signin.success', actorId: user.id, actorLabel: email, subjectUserId: user.id, details: { method: 'access_pass', oneTime: pass.oneTime }, ...meta })
    return { user, expiresAt: pass.expiresAt }
  }
}
