import type { AuditLog } from './audit.ts'
import { DomainError } from './errors.ts'
import type { DeviceToken, KnownDevices } from './known-devices.ts'
import { verifyPassword } from './passwords.ts'
import type { Charge, Regulator, ThrottlePolicy } from './regulation.ts'
import { normaliseEmail, type User, type UserStore } from './users.ts'

export interface SignInPolicy {
  /** Per known browser of an account, and for all unknown browsers of an account together. */
  account: ThrottlePolicy
  /** Per address, counting unknown browsers only. */
  ip: ThrottlePolicy
}

export interface RequestContext {
  ip: string
  userAgent: string | null
}

export interface SignInAttempt extends RequestContext {
  /** The cookies the browser sent: a device cookie among them marks a browser that signed in to the account before. */
  cookies: Readonly<Record<string, string | undefined>>
}

export interface SignedIn {
  user: User
  /** For the browser to keep (as a cookie), so it is known next time. */
  device: DeviceToken
}

type Scope = 'device' | 'account' | 'ip'

/** The lockout message, with how long it lasts and until when (UTC), e.g. for sign-in or code entry. */
export function lockedOutError (until: Date, now: Date, what = 'sign-in'): DomainError {
  const minutes = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 60_000))
  const clock = until.toISOString().slice(11, 16)
  return new DomainError(
    'locked_out',
    `Too many failed attempts. For your security, ${what} is paused for ${minutes} minute${minutes === 1 ? '' : 's'} (until ${clock} UTC). ` +
      'If you did not make these attempts, contact your helpdesk.',
    // The page names the time in the reader's zone (errors.locked_out).
    { until, minutes, activity: what === 'code entry' ? 'code' : what === 'checking with AWS' ? 'aws' : 'signin' }
  )
}

export class SignInService {
  constructor (
    private readonly users: UserStore,
    private readonly regulator: Regulator,
    private readonly audit: AuditLog,
    private readonly policy: SignInPolicy,
    private readonly devices: KnownDevices,
    private readonly now: () => Date
  ) {}

  /**
   * Password sign-in. Unknown user, wrong password and disabled account all give the same error and take the
   * same time. The attempt is counted before the password is checked (Regulator.claim), so attempts made at the
   * same moment are checked at most as often as the limit allows, and a lock holds even against the right password.
   *
   * Whose count (OWASP's device cookies): a browser that signed in to this account before counts its own
   * failures; every other browser shares the account's count for unknown browsers and its address's count. So a
   * stranger can lock out unknown browsers, never the owner's, and the high per-address limit never reaches
   * known browsers behind a shared address.
   */
  async signIn (emailInput: string, password: string, attempt: SignInAttempt): Promise<SignedIn> {
    const email = normaliseEmail(emailInput).slice(0, 254)
    const meta = { ip: attempt.ip, userAgent: attempt.userAgent }
    const device = this.devices.recognise(email, attempt.cookies)
    const charges: Array<Charge & { scope: Scope }> = device !== null
      ? [{ scope: 'device', key: `signin:device:${device}`, policy: this.policy.account }]
      : [{ scope: 'account', key: `signin:untrusted:${email}`, policy: this.policy.account }, { scope: 'ip', key: `signin:ip:${attempt.ip}`, policy: this.policy.ip }]
    const chargeOf = (key: string) => charges.find((charge) => charge.key === key)!

    const claim = await this.regulator.claim(charges)
    if (!claim.granted) {
      const user = await this.users.findByEmail(email)
      await this.audit.append({ action: 'signin.refused_locked', actorLabel: email, subjectUserId: user?.id ?? null, details: { scope: chargeOf(claim.key).scope }, ...meta })
      throw lockedOutError(claim.until, this.now())
    }

    const credentials = await this.users.findCredentials(email)
    const user = credentials?.user
    const passwordOk = await verifyPassword(password, credentials?.passwordHash)
    if (user !== undefined && passwordOk && !user.disabled) {
      // A known browser's earlier typos are forgiven. Unknown browsers' count stands: this success says nothing
      // about guesses made elsewhere, and this browser now gets a device cookie and a count of its own.
      for (const charge of charges) await this.regulator.release(charge.key, claim, { forgive: charge.scope === 'device' })
      await this.audit.append({ action: 'signin.success', actorId: user.id, actorLabel: email, subjectUserId: user.id, details: { method: 'password', knownDevice: device !== null }, ...meta })
      return { user, device: this.devices.issue(email, device) }
    }

    const reason = user === undefined ? 'unknown_user' : user.disabled ? 'account_disabled' : 'wrong_password'
    await this.audit.append({ action: 'signin.failure', actorLabel: email, subjectUserId: user?.id ?? null, details: { reason, knownDevice: device !== null }, ...meta })
    for (const key of claim.limitReached) {
      const { scope, policy } = chargeOf(key)
      await this.audit.append({ action: 'signin.lockout', actorLabel: email, subjectUserId: user?.id ?? null, details: { scope, failures: policy.maxFailures, until: claim.until?.toISOString() ?? null }, ...meta })
    }
    if (claim.until !== null) throw lockedOutError(claim.until, this.now())
    throw new DomainError('invalid_credentials', 'That email and password do not match an account. Check both and try again.')
  }

  async recordSignOut (user: { id: string, email: string }, context: RequestContext): Promise<void> {
    await this.audit.append({ action: 'signout', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, ip: context.ip, userAgent: context.userAgent })
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
      'Multi-factor sign-in is required for your account and you have no sign-in method set up yet. Ask your helpdesk for a temporary access pass, then choose "I have an access pass" on the sign-in page to set one up.')
  }
  return 'required'
}
