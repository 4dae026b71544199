import { randomBytes } from 'node:crypto'
import { Secret, TOTP } from 'otpauth'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import type { ChangeContext, EnrollmentGuard } from './enrollment-guard.ts'
import { DomainError } from './errors.ts'
import { cleanMethodName, type MethodStore } from './methods.ts'
import { words, type AccountNotifier } from './notifications.ts'
import { ProviderError, type ProviderSubject, type RegistrationStatus } from './provider.ts'
import type { Regulator } from './regulation.ts'
import { lockedOutError } from './signin.ts'
import { CODE_POLICY, groupKey, matchTotp, normaliseCode, TOTP_PERIOD_SECONDS, type TotpSetup } from './totp.ts'
import type { User } from './users.ts'

/** The Entra adapter's registration operations (contracts 1.5, 1.9). */
export interface EntraEnrollmentPort {
  /**
   * Create (assigned to the user) + activate a hardware OATH token holding the portal-generated secret, under the
   * portal's serial number; a token that does not end up activated is removed again where Graph lets it.
   */
  enrollOathToken(externalId: string, token: { secretKey: string, code: string, serialNumber: string, displayName?: string }): Promise<{ deviceId: string, methodId: string }>
  /** Refuses (ProviderError 'hardware_oath_policy_disabled') when the tenant's policy has hardware OATH tokens off. */
  assertOathAllowed(): Promise<void>
  /** Removes the token with this serial number unless it is activated. */
  removeOathToken(externalId: string, serialNumber: string): Promise<'deleted' | 'already_gone' | 'in_use'>
  registrationStatus(subject: ProviderSubject): Promise<RegistrationStatus>
}

/** A token the portal set out to create at Entra and has not seen activated: removed by housekeeping unless it was. */
export interface OathCleanup {
  id: string
  userId: string
  /** The user's object id (null when the account is gone from the portal). */
  externalId: string | null
  serialNumber: string
  dueAt: Date
}

export interface OathCleanupReport {
  deleted: number
  alreadyGone: number
  inUse: number
  failed: number
}

export interface PendingOath {
  id: string
  userId: string
  /** Base32, opened from its sealed form. */
  secret: string
  expiresAt: Date
}

/** provider_enrollments rows of kind entra_oath: the seed sealed at rest, bound to its row, until activation. */
export interface EntraEnrollmentStore {
  /** Replaces the user's earlier unfinished setup. */
  startOath(userId: string, secretBase32: string, expiresAt: Date): Promise<PendingOath>
  findOath(userId: string): Promise<PendingOath | undefined>
  /** Compare-and-swap: marks the setup taken (one activation per setup); false when another request took it. */
  claimOath(id: string, at: Date): Promise<boolean>
  /** Gives a claimed setup back after Entra refused it, so the user can try another code. */
  releaseOath(id: string): Promise<void>
  /** Records the activated token and wipes the seed: Entra holds it now, and the portal never needs it again. */
  completeOath(id: string, deviceId: string): Promise<void>
  /** Replaces the method kinds Entra reports for the user (users.provider_methods). */
  setProviderMethods(userId: string, kinds: readonly string[]): Promise<void>
  /** Written before a token is created (provider_enrollments, kind entra_oath_cleanup), so no crash can forget it. */
  recordOathCleanup(userId: string, serialNumber: string, dueAt: Date): Promise<string>
  forgetOathCleanup(id: string): Promise<void>
  dueOathCleanups(now: Date, limit: number): Promise<OathCleanup[]>
  /** Compare-and-swap on the due time: the one caller that moves it may act on the entry (a lease). */
  postponeOathCleanup(entry: OathCleanup, until: Date): Promise<boolean>
  /** Forgets setups that ended before `before` without a token (their sealed seeds are no longer needed). */
  purgeUnfinishedOath(before: Date): Promise<number>
}

const SETUP_LIFETIME_MS = 15 * 60_000
/** A token is left to its setup this long before housekeeping may remove it: the setup may still be finishing. */
const CLEANUP_GRACE_MS = 15 * 60_000
/** After a failed removal, housekeeping tries again this much later. */
const CLEANUP_RETRY_MS = 10 * 60_000

export interface EntraEnrollmentSettings {
  /** ENTRA_HARDWARE_OATH: authenticator apps are registered in Entra by the portal. */
  hardwareOath: boolean
  issuer: string
}

/**
 * Methods an Entra user sets up for Entra (DESIGN.md Providers): an authenticator app through the beta hardware
 * OATH API (the portal generates the secret, the user proves a code, the portal creates + assigns + activates the
 * token), and a re-read of what Entra holds after the user registered a passkey on Microsoft's own page.
 */
export class EntraEnrollmentService {
  constructor (
    private readonly port: EntraEnrollmentPort,
    private readonly store: EntraEnrollmentStore,
    private readonly methods: Pick<MethodStore, 'countFor'>,
    private readonly regulator: Regulator,
    private readonly guard: EnrollmentGuard,
    private readonly notifier: AccountNotifier,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    /** Re-derives the user's rollout state after their methods changed. */
    private readonly methodsChanged: (userId: string) => Promise<void>,
    private readonly settings: EntraEnrollmentSettings
  ) {}

  get hardwareOath (): boolean {
    return this.settings.hardwareOath
  }

  /** The one guard, which counts the user's methods in the portal and in Entra alike. */
  async assertMayAdd (user: User, context: ChangeContext): Promise<void> {
    this.entraUser(user)
    this.guard.assertMayAdd(user, await this.methods.countFor(user.id), context)
  }

  /**
   * Refuses, in words, when the tenant's authentication methods policy has hardware OATH tokens turned off: checked
   * before a QR code is shown, so nobody scans a secret Entra would not take. Other failures to ask are left to
   * the finish, which asks again.
   */
  async assertOathAllowed (): Promise<void> {
    this.requireHardwareOath()
    try {
      await this.port.assertOathAllowed()
    } catch (err) {
      if (err instanceof ProviderError && err.code === 'hardware_oath_policy_disabled') throw new DomainError('entra_oath_policy_off', err.message)
      if (!(err instanceof ProviderError)) throw err
    }
  }

  /** Starts (or restarts) an authenticator-app setup with a fresh secret. */
  async beginOath (user: User, context: ChangeContext): Promise<TotpSetup> {
    this.requireHardwareOath()
    await this.assertMayAdd(user, context)
    const secret = new Secret({ size: 20 }).base32
    const pending = await this.store.startOath(user.id, secret, new Date(this.clock.now().getTime() + SETUP_LIFETIME_MS))
    return this.describe(user, pending)
  }

  async currentOath (user: User): Promise<TotpSetup | undefined> {
    const pending = await this.store.findOath(user.id)
    if (pending === undefined || pending.expiresAt <= this.clock.now()) return undefined
    return this.describe(user, pending)
  }

  /** Checks the code here (regulated), then has Entra create, assign and activate the token with it. */
  async finishOath (user: User, codeInput: string, nameInput: string, context: ChangeContext): Promise<{ name: string }> {
    this.requireHardwareOath()
    await this.assertMayAdd(user, context)
    const name = cleanMethodName(nameInput.trim() === '' ? 'Authenticator app' : nameInput)
    if (name === undefined) throw new DomainError('invalid_name', 'Give the app a name of up to 60 characters.')
    const pending = await this.store.findOath(user.id)
    if (pending === undefined || pending.expiresAt <= this.clock.now()) {
      throw new DomainError('setup_expired', 'This setup has expired. Start again to get a new QR code.')
    }
    const key = `entra-oath:user:${user.id}`
    const verdict = await this.regulator.check(key)
    if (verdict.locked) throw lockedOutError(verdict.until, this.clock.now(), 'code entry')
    const code = normaliseCode(codeInput)
    // Checked here first: a wrong code must not leave a half-made token in the directory.
    if (matchTotp(pending.secret, code, this.clock.now()) === null) await this.refuseCode(user, key, /^\d{6}$/.test(code) ? 'wrong_code' : 'malformed_code')
    if (!await this.store.claimOath(pending.id, this.clock.now())) throw new DomainError('setup_expired', 'This setup was already completed or replaced. Start again.', { variant: 'replaced' })
    // Written before the token exists: whatever happens next (a lost answer, a crash), housekeeping can find it by
    // its serial number and remove it unless it was activated. The seed must not sit in the tenant unused.
    const serialNumber = `PORTAL-${randomBytes(6).toString('hex').toUpperCase()}`
    const cleanup = await this.store.recordOathCleanup(user.id, serialNumber, new Date(this.clock.now().getTime() + CLEANUP_GRACE_MS))
    let enrolled: { deviceId: string, methodId: string }
    try {
      enrolled = await this.port.enrollOathToken(user.externalId!, { secretKey: pending.secret, code, serialNumber, displayName: name })
    } catch (err) {
      await this.store.releaseOath(pending.id)
      if (!(err instanceof ProviderError)) throw err
      // These leave nothing at Entra: the refused token was removed, or none was made.
      if (err.code === 'oath_code_rejected' || err.code === 'hardware_oath_policy_disabled') await this.store.forgetOathCleanup(cleanup)
      if (err.code === 'oath_code_rejected') await this.refuseCode(user, key, 'rejected_by_entra')
      if (err.code === 'hardware_oath_policy_disabled') throw new DomainError('entra_oath_policy_off', err.message)
      await this.audit.append({ action: 'entra.oath_failed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { code: err.code, reason: err.message.slice(0, 300), serialNumber } })
      throw new DomainError('provider_unavailable', 'Microsoft could not register the app right now. Wait a minute and enter the newest code from your app again.', { variant: 'entra_register' })
    }
    await this.store.forgetOathCleanup(cleanup)
    await this.regulator.reset(key)
    await this.store.completeOath(pending.id, enrolled.deviceId)
    await this.store.setProviderMethods(user.id, [...new Set([...user.providerMethods, 'totp'])].sort())
    await this.methodsChanged(user.id)
    await this.audit.append({ action: 'entra.oath_enrolled', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { name, deviceId: enrolled.deviceId, methodId: enrolled.methodId, passSession: context.passSession } })
    await this.notifier.accountNotice(user, {
      subject: words('email.entra_app_subject'),
      lines: [
        words('email.entra_app_added', { name, at: this.clock.now() }),
        words('email.not_you_security')
      ]
    })
    return { name }
  }

  /** Re-reads what Entra holds for the user (after they registered on Microsoft's page) and records it. */
  async checkRegistration (user: User): Promise<{ methods: string[], changed: boolean }> {
    const externalId = this.entraUser(user)
    let status: RegistrationStatus
    try {
      status = await this.port.registrationStatus({ userId: user.id, externalId, email: user.email, enrolled: user.providerMethods.length > 0 })
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err
      throw new DomainError('provider_unavailable', 'Microsoft could not be asked right now. Try again in a minute; the next directory sync will also pick it up.', { variant: 'entra_check' })
    }
    const methods = [...new Set(status.methods)].sort()
    const changed = methods.join(',') !== [...user.providerMethods].sort().join(',')
    if (changed) {
      await this.store.setProviderMethods(user.id, methods)
      await this.methodsChanged(user.id)
      await this.audit.append({ action: 'entra.methods_refreshed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { from: user.providerMethods, to: methods, source: status.source } })
    }
    return { methods, changed }
  }

  /**
   * Housekeeping: removes tokens of setups that did not end activated (their removal failed, or the portal stopped
   * midway), once their grace is over, and forgets setups that ended without a token. A removal that fails is tried
   * again later; an activated token is left alone (the setup did work).
   */
  async cleanupAbandoned (limit = 100): Promise<OathCleanupReport> {
    const report: OathCleanupReport = { deleted: 0, alreadyGone: 0, inUse: 0, failed: 0 }
    const now = this.clock.now()
    await this.store.purgeUnfinishedOath(new Date(now.getTime() - SETUP_LIFETIME_MS - CLEANUP_GRACE_MS))
    if (!this.settings.hardwareOath) return report
    for (const entry of await this.store.dueOathCleanups(now, limit)) {
      if (entry.externalId === null) {
        await this.store.forgetOathCleanup(entry.id)
        continue
      }
      // Leased first: another instance's housekeeping leaves an entry it cannot move.
      if (!await this.store.postponeOathCleanup(entry, new Date(now.getTime() + CLEANUP_RETRY_MS))) continue
      let outcome: 'deleted' | 'already_gone' | 'in_use'
      try {
        outcome = await this.port.removeOathToken(entry.externalId, entry.serialNumber)
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err
        report.failed++
        continue
      }
      await this.store.forgetOathCleanup(entry.id)
      if (outcome === 'already_gone') { report.alreadyGone++; continue }
      if (outcome === 'deleted') report.deleted++
      else report.inUse++
      await this.audit.append({ action: 'entra.oath_abandoned_removed', actorLabel: 'system', subjectUserId: entry.userId, details: { serialNumber: entry.serialNumber, outcome } })
    }
    return report
  }

  private async refuseCode (user: User, key: string, reason: string): Promise<never> {
    const verdict = await this.regulator.fail(key, CODE_POLICY)
    await this.audit.append({ action: 'entra.oath_code_rejected', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { reason } })
    if (verdict.justLocked) await this.audit.append({ action: 'entra.oath_lockout', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { until: verdict.locked ? verdict.until.toISOString() : null } })
    if (verdict.locked) throw lockedOutError(verdict.until, this.clock.now(), 'code entry')
    throw new DomainError('wrong_code', 'That code is not right. Check the time on your phone is set automatically, and enter the 6-digit code shown now.')
  }

  private entraUser (user: User): string {
    if (user.provider !== 'entra' || user.externalId === null) {
      throw new DomainError('not_entra_user', 'This page is for accounts from Microsoft Entra ID. Use the other ways to add a method on your home page.')
    }
    return user.externalId
  }

  private requireHardwareOath (): void {
    if (!this.settings.hardwareOath) throw new DomainError('entra_oath_off', 'Authenticator apps are added on Microsoft\'s security info page in this organisation.')
  }

  private describe (user: User, pending: PendingOath): TotpSetup {
    const uri = new TOTP({ issuer: this.settings.issuer, label: user.email, algorithm: 'SHA1', digits: 6, period: TOTP_PERIOD_SECONDS, secret: Secret.fromBase32(pending.secret) }).toString()
    return { secret: pending.secret, uri, groupedKey: groupKey(pending.secret), expiresAt: pending.expiresAt }
  }
}
