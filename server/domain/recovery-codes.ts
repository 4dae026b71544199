import { randomBytes } from 'node:crypto'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { DomainError } from './errors.ts'
import type { KeyedHasher } from './keyed-hash.ts'
import { normalisePass, randomCode } from './passes.ts'
import type { AccountNotifier } from './notifications.ts'
import type { Regulator, ThrottlePolicy } from './regulation.ts'
import { lockedOutError } from './signin.ts'
import type { User } from './users.ts'

/** No 0/O, 1/I/L, as for passes: codes are copied from paper. 31 symbols, 10 characters ≈ 50 bits each. */
export const RECOVERY_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789'
export const RECOVERY_CODE_LENGTH = 10
export const RECOVERY_CODE_COUNT = 10

export interface RecoveryCodeStore {
  /** Voids the user's current codes and stores the new hashes as one set, atomically; returns how many were voided. */
  replace(userId: string, setId: string, hashes: string[], at: Date): number
  /** Marks the unused, unvoided code with this hash used, in one conditional UPDATE; false if there is none. */
  consume(userId: string, codeHash: string, at: Date): boolean
  /** Unused codes of the current set. */
  remaining(userId: string): number
  /** Whether the user ever had a set (used to tell a first set from a regenerated one). */
  hasEverHad(userId: string): boolean
}

export function generateRecoveryCode (): string {
  return randomCode(RECOVERY_ALPHABET, RECOVERY_CODE_LENGTH)
}

/** For reading and writing down: "ABCDE-FGHJK". */
export function groupRecoveryCode (code: string): string {
  return `${code.slice(0, 5)}-${code.slice(5)}`
}

/** Codes as people type them: case, spaces and dashes do not matter (as for passes). */
export const normaliseRecoveryCode = normalisePass

const CODE_POLICY: ThrottlePolicy = { maxFailures: 5, windowMs: 15 * 60_000, lockoutMs: 15 * 60_000 }
const REFUSED = 'That recovery code is not right, or it was already used. Check it and try again, or use another code.'

/** Only accounts the portal itself signs in hold recovery codes; directory accounts recover at their directory. */
export function mayHoldRecoveryCodes (user: Pick<User, 'provider'>): boolean {
  return user.provider === 'local'
}

/**
 * Recovery codes for portal accounts: ten one-time codes, shown once, stored only as keyed hashes, usable in place
 * of a second factor at sign-in. Each use tells the owner by email with how many are left.
 */
export class RecoveryCodeService {
  constructor (
    private readonly store: RecoveryCodeStore,
    private readonly hasher: KeyedHasher,
    private readonly regulator: Regulator,
    private readonly notifier: AccountNotifier,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly log: { error(fields: object, message: string): void }
  ) {}

  /** Voids every code the user holds (a helpdesk reset: whoever had the old paper must not sign in with it). */
  voidAll (userId: string): number {
    return this.store.replace(userId, randomBytes(16).toString('hex'), [], this.clock.now())
  }

  remaining (user: User): number {
    return this.store.remaining(user.id)
  }

  /**
   * A new set of codes, voiding any earlier set. The caller has checked that the session stepped up recently; the
   * codes are returned once and never stored in the clear.
   */
  generate (user: User, meta: { ip?: string, userAgent?: string } = {}): string[] {
    if (!mayHoldRecoveryCodes(user)) throw new DomainError('directory_account', 'Your account is managed by your organisation\'s directory: use its own account recovery.')
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => generateRecoveryCode())
    const first = !this.store.hasEverHad(user.id)
    const voided = this.store.replace(user.id, randomBytes(16).toString('hex'), codes.map((code) => this.hash(user, code)), this.clock.now())
    this.audit.append({ action: first ? 'recovery_codes.generated' : 'recovery_codes.regenerated', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { count: codes.length, voided }, ...meta })
    return codes.map(groupRecoveryCode)
  }

  /**
   * Signs in with a recovery code in place of a second factor. The attempt is counted before the code is checked
   * (claim-before-check), and the code is used up by one conditional UPDATE, so it works once even when sent twice
   * at the same moment. Returns how many codes are left.
   */
  async use (user: User, input: string, meta: { ip?: string, userAgent?: string } = {}): Promise<number> {
    const key = `recovery:user:${user.id}`
    const claim = this.regulator.claim([{ key, policy: CODE_POLICY }])
    if (!claim.granted) throw lockedOutError(claim.until, this.clock.now(), 'code entry')
    const code = normaliseRecoveryCode(input)
    const wellFormed = code.length === RECOVERY_CODE_LENGTH && [...code].every((c) => RECOVERY_ALPHABET.includes(c))
    const now = this.clock.now()
    if (!mayHoldRecoveryCodes(user) || !wellFormed || !this.store.consume(user.id, this.hash(user, code), now)) {
      this.audit.append({ action: 'recovery_codes.refused', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { reason: wellFormed ? 'wrong_or_used' : 'malformed' }, ...meta })
      if (claim.limitReached.length > 0) throw lockedOutError(claim.until!, now, 'code entry')
      throw new DomainError('wrong_code', REFUSED)
    }
    this.regulator.release(key, claim, { forgive: true })
    const left = this.store.remaining(user.id)
    this.audit.append({ action: 'recovery_codes.used', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { remaining: left }, ...meta })
    await this.tellUser(user, left, now)
    return left
  }

  private async tellUser (user: User, left: number, at: Date): Promise<void> {
    try {
      await this.notifier.accountNotice(user, {
        subject: 'A recovery code was used to sign in to your account',
        lines: [
          `A recovery code was used to sign in to your account on ${at.toISOString().replace('T', ' ').slice(0, 16)} UTC. Was this you?`,
          `You have ${left} recovery code${left === 1 ? '' : 's'} left.${left <= 3 ? ' Create a new set from your account page soon.' : ''}`,
          'This wasn\'t me: someone has your password and one of your recovery codes. Contact your helpdesk now, and once signed in, create new recovery codes (the old ones stop working) and change your password.'
        ]
      })
    } catch (err) {
      // The sign-in stands; the failure is visible in the log and the audit trail.
      this.log.error({ err }, 'recovery code email could not be sent')
      this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: user.id, details: { message: 'recovery code used', reason: (err as Error).message } })
    }
  }

  /** Bound to the user, so a hash copied to another account's row matches nothing. */
  private hash (user: Pick<User, 'id'>, code: string): string {
    return this.hasher.hash(normaliseRecoveryCode(code), `recovery-code:${user.id}`)
  }
}
