import { randomBytes } from 'node:crypto'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { DomainError } from './errors.ts'
import type { KeyedHasher } from './keyed-hash.ts'
import { normalisePass, randomCode } from './passes.ts'
import { words, type Notifier } from './notifications.ts'
import type { Regulator, ThrottlePolicy } from './regulation.ts'
import { lockedOutError } from './signin.ts'
import type { SessionRevoker, User } from './users.ts'

/** No 0/O, 1/I/L, as for passes: codes are copied from paper. 31 symbols, 10 characters ≈ 50 bits each. */
export const RECOVERY_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789'
export const RECOVERY_CODE_LENGTH = 10
export const RECOVERY_CODE_COUNT = 10

export interface RecoveryCodeStore {
  /** Voids the user's current codes and stores the new hashes as one set, atomically; returns how many were voided. */
  replace(userId: string, setId: string, hashes: string[], at: Date): Promise<number>
  /** Marks the unused, unvoided code with this hash used, in one conditional UPDATE; false if there is none. */
  consume(userId: string, codeHash: string, at: Date): Promise<boolean>
  /** Unused codes of the current set. */
  remaining(userId: string): Promise<number>
  /** Whether the user ever had a set (used to tell a first set from a regenerated one). */
  hasEverHad(userId: string): Promise<boolean>
}

/** The "This wasn't me" link of a recovery-code e-mail, as stored (the token only as a keyed hash). */
export interface RecoveryNotice {
  id: string
  userId: string
  /** When the code was used. */
  usedCodeAt: Date
  expiresAt: Date
  usedAt: Date | null
}

export interface RecoveryNoticeStore {
  create(notice: { userId: string, tokenHash: string, usedCodeAt: Date, expiresAt: Date }): Promise<RecoveryNotice>
  findByTokenHash(tokenHash: string): Promise<RecoveryNotice | undefined>
  /** Marks the notice used once (compare-and-swap); false if it was used already. */
  claim(id: string, at: Date): Promise<boolean>
}

/** What "This wasn't me" needs besides the codes: the notices, sessions to end, admins to alert, and where links point. */
export interface RecoveryReporting {
  notices: RecoveryNoticeStore
  sessions: SessionRevoker
  admins: () => Promise<Array<Pick<User, 'email' | 'displayName'>>>
  publicUrl: URL
  /** Re-derives the user's rollout state (recovery codes may count toward the campaign's policy). */
  codesChanged: (userId: string) => Promise<void>
}

const NOTICE_LIFETIME_MS = 30 * 24 * 3_600_000
const NOTICE_PURPOSE = 'recovery-code-notice'

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
    private readonly notifier: Pick<Notifier, 'accountNotice' | 'alertAdmins'>,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly log: { error(fields: object, message: string): void },
    private readonly reporting: RecoveryReporting
  ) {}

  /** Voids every code the user holds (a helpdesk reset: whoever had the old paper must not sign in with it). */
  async voidAll (userId: string): Promise<number> {
    const voided = await this.store.replace(userId, randomBytes(16).toString('hex'), [], this.clock.now())
    await this.reporting.codesChanged(userId)
    return voided
  }

  async remaining (user: Pick<User, 'id'>): Promise<number> {
    return this.store.remaining(user.id)
  }

  /**
   * A new set of codes, voiding any earlier set. The caller has checked that the session stepped up recently; the
   * codes are returned once and never stored in the clear.
   */
  async generate (user: User, meta: { ip?: string, userAgent?: string } = {}): Promise<string[]> {
    if (!mayHoldRecoveryCodes(user)) throw new DomainError('directory_account', 'Your account is managed by your organisation\'s directory: use its own account recovery.')
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => generateRecoveryCode())
    const first = !await this.store.hasEverHad(user.id)
    const voided = await this.store.replace(user.id, randomBytes(16).toString('hex'), codes.map((code) => this.hash(user, code)), this.clock.now())
    await this.audit.append({ action: first ? 'recovery_codes.generated' : 'recovery_codes.regenerated', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { count: codes.length, voided }, ...meta })
    await this.reporting.codesChanged(user.id)
    return codes.map(groupRecoveryCode)
  }

  /**
   * Signs in with a recovery code in place of a second factor. The attempt is counted before the code is checked
   * (claim-before-check), and the code is used up by one conditional UPDATE, so it works once even when sent twice
   * at the same moment. Returns how many codes are left.
   */
  async use (user: User, input: string, meta: { ip?: string, userAgent?: string } = {}): Promise<number> {
    const key = `recovery:user:${user.id}`
    const claim = await this.regulator.claim([{ key, policy: CODE_POLICY }])
    if (!claim.granted) throw lockedOutError(claim.until, this.clock.now(), 'code entry')
    const code = normaliseRecoveryCode(input)
    const wellFormed = code.length === RECOVERY_CODE_LENGTH && [...code].every((c) => RECOVERY_ALPHABET.includes(c))
    const now = this.clock.now()
    if (!mayHoldRecoveryCodes(user) || !wellFormed || !await this.store.consume(user.id, this.hash(user, code), now)) {
      await this.audit.append({ action: 'recovery_codes.refused', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { reason: wellFormed ? 'wrong_or_used' : 'malformed' }, ...meta })
      if (claim.limitReached.length > 0) throw lockedOutError(claim.until!, now, 'code entry')
      throw new DomainError('wrong_code', REFUSED, { variant: 'recovery' })
    }
    await this.regulator.release(key, claim, { forgive: true })
    const left = await this.store.remaining(user.id)
    await this.audit.append({ action: 'recovery_codes.used', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { remaining: left }, ...meta })
    if (left === 0) await this.reporting.codesChanged(user.id)
    await this.tellUser(user, left, now)
    return left
  }

  /** The notice behind a "This wasn't me" link, if the link is genuine, unused, unexpired and the signed-in user's. */
  async noticeFor (user: Pick<User, 'id'>, token: string): Promise<RecoveryNotice> {
    const notice = await this.reporting.notices.findByTokenHash(this.hasher.hash(token, NOTICE_PURPOSE))
    if (notice === undefined || notice.userId !== user.id) {
      throw new DomainError('notice_not_found', 'This link is not valid for your account. Make sure you are signed in as the person the email was sent to.')
    }
    if (notice.usedAt !== null) throw new DomainError('notice_used', 'This link was already used. Your helpdesk and administrators have been told.')
    if (notice.expiresAt <= this.clock.now()) throw new DomainError('notice_expired', 'This link has expired. If something looks wrong with your account, contact your helpdesk.')
    return notice
  }

  /**
   * "This wasn't me" from the recovery-code e-mail: the remaining codes are voided (whoever used one may hold the
   * rest of the paper), every session of the account ends (the reporting browser is signed in again by the
   * caller), and it is audited and the admins alerted, as for a method change reported the same way. No step-up is
   * asked for: the person reporting may have lost their factors to whoever used the code.
   */
  async reportNotMe (user: User, token: string, meta: { ip?: string, userAgent?: string } = {}): Promise<{ voided: number, sessionsEnded: number }> {
    const notice = await this.noticeFor(user, token)
    if (!await this.reporting.notices.claim(notice.id, this.clock.now())) {
      throw new DomainError('notice_used', 'This link was already used. Your helpdesk and administrators have been told.')
    }
    const voided = await this.voidAll(user.id)
    const sessionsEnded = await this.reporting.sessions.revokeAllFor(user.id)
    await this.audit.append({
      action: 'recovery_codes.reported_not_me', actorId: user.id, actorLabel: user.email, subjectUserId: user.id,
      details: { usedCodeAt: notice.usedCodeAt.toISOString(), voided, sessionsEnded }, ...meta
    })
    try {
      await this.notifier.alertAdmins(await this.reporting.admins(), {
        subject: words('email.alert_recovery_subject', { name: user.displayName }),
        subjectUser: user,
        lines: [
          words('email.alert_recovery_said', { name: user.displayName, email: user.email, at: notice.usedCodeAt }),
          words('email.alert_recovery_voided', { voided }),
          words('email.alert_recovery_act')
        ]
      })
    } catch (err) {
      this.log.error({ err }, 'admin alert could not be sent')
      await this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: user.id, details: { message: 'admin alert', reason: (err as Error).message } })
    }
    return { voided, sessionsEnded }
  }

  private async tellUser (user: User, left: number, at: Date): Promise<void> {
    const token = randomBytes(32).toString('base64url')
    await this.reporting.notices.create({ userId: user.id, tokenHash: this.hasher.hash(token, NOTICE_PURPOSE), usedCodeAt: at, expiresAt: new Date(at.getTime() + NOTICE_LIFETIME_MS) })
    try {
      await this.notifier.accountNotice(user, {
        subject: words('email.recovery_used_subject'),
        lines: [
          words('email.recovery_used_when', { at }),
          words('email.recovery_left', { left, low: left <= 3 ? 'yes' : 'no' }),
          words('email.recovery_not_me')
        ],
        link: { label: words('email.not_me_link'), url: new URL(`/recovery-codes/not-me?token=${token}`, this.reporting.publicUrl).toString() }
      })
    } catch (err) {
      // The sign-in stands; the failure is visible in the log and the audit trail.
      this.log.error({ err }, 'recovery code email could not be sent')
      await this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: user.id, details: { message: 'recovery code used', reason: (err as Error).message } })
    }
  }

  /** Bound to the user, so a hash copied to another account's row matches nothing. */
  private hash (user: Pick<User, 'id'>, code: string): string {
    return this.hasher.hash(normaliseRecoveryCode(code), `recovery-code:${user.id}`)
  }
}
