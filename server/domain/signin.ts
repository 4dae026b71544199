import type { AuditLog } from './audit.ts'
import { DomainError } from './errors.ts'
import { verifyPassword } from './passwords.ts'
import type { Regulator, ThrottlePolicy } from './regulation.ts'
import { normaliseEmail, type User, type UserStore } from './users.ts'

export interface SignInPolicy {
  account: ThrottlePolicy
  ip: ThrottlePolicy
}

export interface RequestContext {
  ip: string
  userAgent: string | null
}

/** The lockout message, with how long it lasts and until when (UTC), e.g. for sign-in or code entry. */
export function lockedOutError (until: Date, now: Date, what = 'sign-in'): DomainError {
  const minutes = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 60_000))
  const clock = until.toISOString().slice(11, 16)
  return new DomainError(
    'locked_out',
    `Too many failed attempts. For your security, ${what} is paused for ${minutes} minute${minutes === 1 ? '' : 's'} (until ${clock} UTC). ` +
      'If you did not make these attempts, contact your helpdesk.',
    { until: until.toISOString() }
  )
}

export class SignInService {
  constructor (
    private readonly users: UserStore,
    private readonly regulator: Regulator,
    private readonly audit: AuditLog,
    private readonly policy: SignInPolicy,
    private readonly now: () => Date
  ) {}

  /**
   * Password sign-in. Unknown user, wrong password and disabled account all give the same error and
   * take the same time; failures are counted per account and per address, and a lock holds even
   * against the right password.
   */
  async signIn (emailInput: string, password: string, context: RequestContext): Promise<User> {
    const email = normaliseEmail(emailInput).slice(0, 254)
    const accountKey = `signin:account:${email}`
    const ipKey = `signin:ip:${context.ip}`
    const meta = { ip: context.ip, userAgent: context.userAgent }

    for (const key of [accountKey, ipKey]) {
      const verdict = this.regulator.check(key)
      if (verdict.locked) {
        const user = this.users.findByEmail(email)
        this.audit.append({ action: 'signin.refused_locked', actorLabel: email, subjectUserId: user?.id ?? null, details: { scope: key === accountKey ? 'account' : 'ip' }, ...meta })
        throw lockedOutError(verdict.until, this.now())
      }
    }

    const user = this.users.findByEmail(email)
    const passwordOk = await verifyPassword(password, user?.passwordHash)
    if (user !== undefined && passwordOk && !user.disabled) {
      this.regulator.reset(accountKey)
      this.audit.append({ action: 'signin.success', actorId: user.id, actorLabel: email, subjectUserId: user.id, details: { method: 'password' }, ...meta })
      return user
    }

    const reason = user === undefined ? 'unknown_user' : user.disabled ? 'account_disabled' : 'wrong_password'
    this.audit.append({ action: 'signin.failure', actorLabel: email, subjectUserId: user?.id ?? null, details: { reason }, ...meta })
    let lockedUntil: Date | undefined
    for (const [key, policy, scope] of [[accountKey, this.policy.account, 'account'], [ipKey, this.policy.ip, 'ip']] as const) {
      const verdict = this.regulator.fail(key, policy)
      if (verdict.justLocked) {
        this.audit.append({ action: 'signin.lockout', actorLabel: email, subjectUserId: user?.id ?? null, details: { scope, failures: policy.maxFailures, until: verdict.locked ? verdict.until.toISOString() : null }, ...meta })
      }
      if (verdict.locked) lockedUntil = verdict.until
    }
    if (lockedUntil !== undefined) throw lockedOutError(lockedUntil, this.now())
    throw new DomainError('invalid_credentials', 'That email and password do not match an account. Check both and try again.')
  }

  recordSignOut (user: { id: string, email: string }, context: RequestContext): void {
    this.audit.append({ action: 'signout', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, ip: context.ip, userAgent: context.userAgent })
  }
}

/**
 * After a password, what an enforced account must still do (the local provider's switch): nothing while MFA is
 * optional; prove a second factor when it holds one; and with none, it cannot get in on a password alone.
 */
/**
 * What a password sign-in still owes: nothing, any second factor (MFA enforced for the user), or a passkey
 * (helpdesk and admin accounts that hold one, when STAFF_PASSKEY_REQUIRED: staff accounts unlock other people).
 */
export function secondFactorRequirement (user: Pick<User, 'enforcedAt' | 'role'>, methodKinds: readonly string[], staffPasskeyRequired = false): 'none' | 'required' | 'passkey' {
  if (staffPasskeyRequired && user.role !== 'user' && methodKinds.includes('passkey')) return 'passkey'
  if (user.enforcedAt === null) return 'none'
  if (methodKinds.length === 0) {
    throw new DomainError('second_factor_missing',
      'Multi-factor sign-in is required for your account and you have no sign-in method set up yet. Ask your helpdesk for a temporary access pass to set one up.')
  }
  return 'required'
}
