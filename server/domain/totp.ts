import { Secret, TOTP } from 'otpauth'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import type { ChangeContext, EnrollmentGuard } from './enrollment-guard.ts'
import { DomainError } from './errors.ts'
import { cleanMethodName, type AuthMethod, type MethodStore } from './methods.ts'
import type { MethodLifecycle } from './method-lifecycle.ts'
import type { PendingStore } from './pending.ts'
import type { Regulator, ThrottlePolicy } from './regulation.ts'
import { lockedOutError } from './signin.ts'
import type { User } from './users.ts'

export const TOTP_PERIOD_SECONDS = 30
const SETUP_LIFETIME_MS = 15 * 60_000
/** 5 wrong codes within 15 minutes lock code entry for 15 minutes. */
export const CODE_POLICY: ThrottlePolicy = { maxFailures: 5, windowMs: 15 * 60_000, lockoutMs: 15 * 60_000 }

function totpFor (secret: string, issuer = '', label = ''): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: 6, period: TOTP_PERIOD_SECONDS, secret: Secret.fromBase32(secret) })
}

/** The time step a code belongs to (±1 step of `at`), or null. */
export function matchTotp (secretBase32: string, code: string, at: Date): number | null {
  if (!/^\d{6}$/.test(code)) return null
  const delta = totpFor(secretBase32).validate({ token: code, timestamp: at.getTime(), window: 1 })
  return delta === null ? null : Math.floor(at.getTime() / 1000 / TOTP_PERIOD_SECONDS) + delta
}

/** "JBSW Y3DP EHPK 3PXP" — easier to read aloud and type. */
export function groupKey (secretBase32: string): string {
  return secretBase32.replace(/(.{4})(?=.)/g, '$1 ')
}

/** Codes as people type them: spaces and dashes removed. */
export function normaliseCode (code: string): string {
  return code.replace(/[\s-]/g, '')
}

export interface TotpSetup {
  secret: string
  uri: string
  groupedKey: string
  expiresAt: Date
}

export class TotpService {
  constructor (
    private readonly methods: MethodStore,
    private readonly pending: PendingStore,
    private readonly regulator: Regulator,
    private readonly guard: EnrollmentGuard,
    private readonly lifecycle: MethodLifecycle,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly issuer: string
  ) {}

  /** Starts (or restarts) a setup: a fresh secret kept pending until the user proves a code. */
  async begin (user: User, context: ChangeContext): Promise<TotpSetup> {
    this.guard.assertMayAdd(user, await this.methods.countFor(user.id), context)
    const secret = new Secret({ size: 20 }).base32
    const expiresAt = new Date(this.clock.now().getTime() + SETUP_LIFETIME_MS)
    await this.pending.startTotp(user.id, secret, expiresAt)
    return this.describe(user, secret, expiresAt)
  }

  /** The pending setup, to show the same QR again (e.g. after a wrong code). */
  async current (user: User): Promise<TotpSetup | undefined> {
    const setup = await this.pending.findTotp(user.id)
    if (setup === undefined || setup.expiresAt <= this.clock.now()) return undefined
    return this.describe(user, setup.secret, setup.expiresAt)
  }

  /** Saves the authenticator app once the user proves a current code from it. */
  async finish (user: User, codeInput: string, nameInput: string, context: ChangeContext): Promise<AuthMethod> {
    this.guard.assertMayAdd(user, await this.methods.countFor(user.id), context)
    const name = cleanMethodName(nameInput.trim() === '' ? 'Authenticator app' : nameInput)
    if (name === undefined) throw new DomainError('invalid_name', 'Give the app a name of up to 60 characters.')
    const setup = await this.pending.findTotp(user.id)
    if (setup === undefined || setup.expiresAt <= this.clock.now()) {
      throw new DomainError('setup_expired', 'This setup has expired. Start again to get a new QR code.')
    }
    const step = await this.checkCode(user, `totp:user:${user.id}`, setup.secret, codeInput)
    if (!await this.pending.claim(setup.id)) throw new DomainError('setup_expired', 'This setup was already completed or replaced. Start again.', { variant: 'replaced' })
    const method = await this.methods.addTotp(user.id, name, setup.secret, step)
    await this.lifecycle.added(user, method, context)
    return method
  }

  /** Step-up or sign-in check with an enrolled app: each code works once. */
  async verify (user: User, methodId: string, codeInput: string): Promise<AuthMethod> {
    const method = await this.methods.findFor(user.id, methodId)
    const secret = method?.kind === 'totp' ? await this.methods.totpSecret(user.id, methodId) : undefined
    if (method === undefined || secret === undefined) throw new DomainError('method_not_found', 'That sign-in method does not exist.')
    const step = await this.checkCode(user, `totp:user:${user.id}`, secret, codeInput)
    if (!await this.methods.claimTotpStep(method.id, step, this.clock.now())) {
      await this.recordFailure(user, `totp:user:${user.id}`, 'replayed_code')
      throw new DomainError('code_already_used', 'That code was already used. Wait for the next code in your app and enter that one.')
    }
    return method
  }

  private async checkCode (user: User, key: string, secret: string, codeInput: string): Promise<number> {
    const verdict = await this.regulator.check(key)
    if (verdict.locked) throw lockedOutError(verdict.until, this.clock.now(), 'code entry')
    const code = normaliseCode(codeInput)
    const step = matchTotp(secret, code, this.clock.now())
    if (step === null) {
      await this.recordFailure(user, key, /^\d{6}$/.test(code) ? 'wrong_code' : 'malformed_code')
      throw new DomainError('wrong_code', 'That code is not right. Check the time on your phone is set automatically, and enter the 6-digit code shown now.')
    }
    await this.regulator.reset(key)
    return step
  }

  private async recordFailure (user: User, key: string, reason: string): Promise<void> {
    const verdict = await this.regulator.fail(key, CODE_POLICY)
    await this.audit.append({ action: 'totp.code_rejected', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { reason } })
    if (verdict.justLocked) {
      await this.audit.append({ action: 'totp.lockout', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { until: verdict.locked ? verdict.until.toISOString() : null } })
    }
    if (verdict.locked) throw lockedOutError(verdict.until, this.clock.now(), 'code entry')
  }

  private describe (user: User, secret: string, expiresAt: Date): TotpSetup {
    return { secret, uri: totpFor(secret, this.issuer, user.email).toString(), groupedKey: groupKey(secret), expiresAt }
  }
}
