import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import type { ChangeContext, EnrollmentGuard } from './enrollment-guard.ts'
import { DomainError } from './errors.ts'
import type { MethodStore } from './methods.ts'
import { words, type AccountNotifier, type Words } from './notifications.ts'
import type { RegistrationStatus, ProviderSubject } from './provider.ts'
import type { Regulator, ThrottlePolicy } from './regulation.ts'
import { lockedOutError } from './signin.ts'
import { CODE_POLICY } from './totp.ts'
import type { User } from './users.ts'

/** provider_enrollments.kind of an IAM virtual MFA device set up through the portal. */
export const AWS_VIRTUAL_MFA = 'aws_virtual_mfa'
/** "Check now" on the security-key page asks AWS at most 5 times in 10 minutes per user. */
export const CHECK_POLICY: ThrottlePolicy = { maxFailures: 5, windowMs: 10 * 60_000, lockoutMs: 10 * 60_000 }

/** What the enrollment page shows while a setup is pending. */
export interface VirtualMfaSetupView {
  serialNumber: string
  otpauthUri: string
  /** A PNG data: URL drawn by the portal (the URI holds the seed, so never by an outside service). */
  qrPngDataUrl: string
  groupedSecret: string
  expiresAt: Date
}

/**
 * The provider port for brokered virtual MFA (the AWS adapter implements it: CreateVirtualMFADevice, then
 * EnableMFADevice with two consecutive codes). Rejected codes and refusals are results, not errors.
 */
export interface VirtualMfaProvider {
  /** `externalId` is the IAM user id: the adapter calls IAM under the user's current name. */
  beginVirtualMfa(externalId: string): Promise<
    | { ok: true, setup: VirtualMfaSetupView & { secret: string } }
    | { ok: false, reason: string, message: string }>
  virtualMfaSetup(externalId: string, serialNumber: string, secret: string, expiresAt: Date): Promise<VirtualMfaSetupView>
  completeVirtualMfa(externalId: string, serialNumber: string, code1: string, code2: string): Promise<
    | { ok: true, serialNumber: string, method: 'totp' }
    | { ok: false, reason: string, message: string, retry: boolean }>
  deleteVirtualMfa(serialNumber: string): Promise<'deleted' | 'already_gone' | 'in_use'>
  registrationStatus(subject: ProviderSubject): Promise<RegistrationStatus>
}

/** A device being set up at a provider until it is proven (completed) or abandoned (cleaned up). */
export interface ProviderEnrollment {
  id: string
  userId: string
  provider: string
  kind: string
  deviceId: string
  attempts: number
  createdAt: Date
  expiresAt: Date
  completedAt: Date | null
}

export interface ProviderEnrollmentStore {
  /** Stores a new pending device (seed sealed, bound to the row) and drops the user's earlier unfinished ones of this kind. */
  start(entry: { userId: string, provider: string, kind: string, deviceId: string, secret: string, expiresAt: Date }): Promise<ProviderEnrollment>
  /** The user's unfinished, unexpired setup of this kind with its seed, if any. */
  findOpen(userId: string, kind: string, now: Date): Promise<(ProviderEnrollment & { secret: string }) | undefined>
  addAttempt(id: string): Promise<void>
  /**
   * Marks the setup completed (compare-and-swap: false when it was completed or removed meanwhile) and adds
   * `methodKind` to the user's provider methods in the same transaction, so the engine counts it at once.
   */
  complete(id: string, methodKind: string, now: Date): Promise<boolean>
  /** Replaces the user's provider methods with what the provider reports. */
  setProviderMethods(userId: string, methods: string[]): Promise<void>
  /** Unfinished setups of this kind that expired before `now`, oldest first. */
  listAbandoned(kind: string, now: Date, limit: number): Promise<ProviderEnrollment[]>
  /** Removes an unfinished setup (compare-and-swap); false when it was completed or removed meanwhile. */
  remove(id: string): Promise<boolean>
  /** Puts back a row removed by `remove` (its device could not be deleted this time: retried next run). */
  restore(entry: ProviderEnrollment): Promise<void>
  /** The user's ARN as the directory recorded it (names the account and partition), if any. */
  arnOf(userId: string): Promise<string | null>
}

export interface CleanupReport {
  deleted: number
  alreadyGone: number
  /** Enabled meanwhile (e.g. our completion's answer was lost): left alone at AWS, the row dropped. */
  inUse: number
  /** IAM could not be asked this time; the rows stay for the next run. */
  failed: number
}

/**
 * An authenticator app enrolled at AWS IAM on the user's behalf (issue #7 item 2): the portal creates the virtual
 * device, keeps its seed sealed while the user scans it, and enables it with two consecutive codes. The device's
 * serial number only ever comes from the user's own pending row. Code checks go through the Regulator like the
 * portal's own TOTP; abandoned devices are deleted at AWS by `cleanupAbandoned`.
 */
export class VirtualMfaEnrollmentService {
  constructor (
    private readonly store: ProviderEnrollmentStore,
    private readonly provider: () => VirtualMfaProvider | undefined,
    private readonly methods: Pick<MethodStore, 'countFor'>,
    private readonly regulator: Regulator,
    private readonly guard: EnrollmentGuard,
    private readonly audit: AuditLog,
    private readonly notifier: AccountNotifier,
    private readonly engine: { refreshUser(userId: string): Promise<unknown> },
    private readonly clock: Clock,
    private readonly log: { error(fields: object, message: string): void }
  ) {}

  /**
   * The one guard, which counts methods wherever they are registered: an IAM user with a device at AWS is not
   * setting up a "first" method, so adding another needs a step-up (or a pass/invitation session), not just the network.
   */
  async assertMayAdd (user: User, context: ChangeContext): Promise<void> {
    this.iamUserId(user)
    this.guard.assertMayAdd(user, await this.methods.countFor(user.id), context)
  }

  /** The user's IAM ARN from the last sync, for links into the right AWS account's console. */
  async arnOf (user: User): Promise<string | null> {
    return this.store.arnOf(user.id)
  }

  /** The pending setup, redrawn from the sealed seed (no IAM call), or undefined when there is none. */
  async current (user: User): Promise<VirtualMfaSetupView | undefined> {
    const open = await this.store.findOpen(user.id, AWS_VIRTUAL_MFA, this.clock.now())
    if (open === undefined) return undefined
    return this.broker().virtualMfaSetup(this.iamUserId(user), open.deviceId, open.secret, open.expiresAt)
  }

  /** Creates a fresh device at AWS (replacing any unfinished one) and keeps its seed sealed until it is proven. */
  async begin (user: User, context: ChangeContext): Promise<VirtualMfaSetupView> {
    await this.assertMayAdd(user, context)
    const result = await this.broker().beginVirtualMfa(this.iamUserId(user))
    if (!result.ok) throw new DomainError(result.reason, result.message, { variant: 'aws' })
    const { secret, ...view } = result.setup
    await this.store.start({ userId: user.id, provider: 'aws', kind: AWS_VIRTUAL_MFA, deviceId: view.serialNumber, secret, expiresAt: view.expiresAt })
    await this.audit.append({ action: 'aws_mfa.setup_started', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { serialNumber: view.serialNumber, passSession: context.passSession } })
    return view
  }

  /**
   * Enables the pending device with two consecutive codes. A wrong or non-consecutive pair counts as a failed code
   * check (5 in 15 minutes lock code entry for 15 minutes) and the same setup stays open for another try.
   */
  async finish (user: User, code1: string, code2: string, context: ChangeContext): Promise<{ serialNumber: string }> {
    await this.assertMayAdd(user, context)
    const key = `aws-mfa:user:${user.id}`
    const verdict = await this.regulator.check(key)
    if (verdict.locked) throw lockedOutError(verdict.until, this.clock.now(), 'code entry')
    const pending = await this.store.findOpen(user.id, AWS_VIRTUAL_MFA, this.clock.now())
    if (pending === undefined) throw new DomainError('setup_expired', 'This setup has expired. Start again to get a new QR code.')

    // Only the user's own pending row names the device: a serial number sent with the form is never used.
    const result = await this.broker().completeVirtualMfa(this.iamUserId(user), pending.deviceId, code1, code2)
    if (!result.ok) {
      if (result.retry) {
        await this.store.addAttempt(pending.id)
        await this.recordFailure(user, key, result.reason)
        throw new DomainError('wrong_code', result.message, { variant: result.reason })
      }
      // The device is gone or unusable at AWS: this setup cannot be finished; a new one must begin.
      await this.store.remove(pending.id)
      throw new DomainError(result.reason === 'device_limit' ? 'device_limit' : 'setup_expired', result.message, { variant: result.reason })
    }
    await this.regulator.reset(key)
    const now = this.clock.now()
    if (!await this.store.complete(pending.id, 'totp', now)) {
      throw new DomainError('setup_expired', 'This setup was already completed or replaced. Start again.', { variant: 'replaced' })
    }
    await this.audit.append({ action: 'method.added', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { kind: 'totp', provider: 'aws', serialNumber: pending.deviceId, name: 'Authenticator app (AWS)', passSession: context.passSession } })
    await this.engine.refreshUser(user.id)
    await this.tell(user, [
      words('email.aws_added', { name: user.displayName, at: now }),
      words('email.aws_from_now'),
      words('email.aws_not_you')
    ])
    return { serialNumber: pending.deviceId }
  }

  /**
   * "Check now" on the security-key page: asks AWS which MFA devices the user holds and records them, as the next
   * sync would. Limited per user, since each check is several IAM calls.
   */
  async checkRegistration (user: User): Promise<{ methods: string[], added: string[] }> {
    const externalId = this.iamUserId(user)
    const key = `aws-check:user:${user.id}`
    const verdict = await this.regulator.check(key)
    if (verdict.locked) throw lockedOutError(verdict.until, this.clock.now(), 'checking with AWS')
    await this.regulator.fail(key, CHECK_POLICY)
    const status = await this.broker().registrationStatus({ userId: user.id, externalId, email: user.email, enrolled: user.providerMethods.length > 0 })
    const added = status.methods.filter((kind) => !user.providerMethods.includes(kind))
    await this.store.setProviderMethods(user.id, status.methods)
    await this.audit.append({ action: 'aws_mfa.checked', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { methods: status.methods, added, source: status.source } })
    await this.engine.refreshUser(user.id)
    return { methods: status.methods, added }
  }

  /** Deletes devices whose setup was abandoned (expired, never enabled) at AWS and forgets their rows. */
  async cleanupAbandoned (limit = 100): Promise<CleanupReport> {
    const report: CleanupReport = { deleted: 0, alreadyGone: 0, inUse: 0, failed: 0 }
    const provider = this.provider()
    if (provider === undefined) return report
    for (const entry of await this.store.listAbandoned(AWS_VIRTUAL_MFA, this.clock.now(), limit)) {
      // Claimed first: a setup that was completed or replaced meanwhile is not ours to delete any more.
      if (!await this.store.remove(entry.id)) continue
      let outcome: 'deleted' | 'already_gone' | 'in_use'
      try {
        outcome = await provider.deleteVirtualMfa(entry.deviceId)
      } catch (err) {
        await this.store.restore(entry)
        report.failed++
        this.log.error({ err, serialNumber: entry.deviceId }, 'abandoned AWS virtual MFA device could not be deleted; retried next run')
        continue
      }
      if (outcome === 'deleted') report.deleted++
      else if (outcome === 'already_gone') report.alreadyGone++
      else report.inUse++
      await this.audit.append({ action: 'aws_mfa.abandoned_deleted', actorLabel: 'system', subjectUserId: entry.userId, details: { serialNumber: entry.deviceId, outcome } })
    }
    return report
  }

  private broker (): VirtualMfaProvider {
    const provider = this.provider()
    if (provider === undefined) throw new DomainError('provider_not_configured', 'AWS is not connected to this portal.')
    return provider
  }

  /** The user's IAM user id (the sync keeps the name in displayName, for people to read). */
  private iamUserId (user: User): string {
    if (user.provider !== 'aws' || user.externalId === null) {
      throw new DomainError('not_aws_user', 'This page is for people whose account is an AWS IAM user.')
    }
    return user.externalId
  }

  private async recordFailure (user: User, key: string, reason: string): Promise<void> {
    const verdict = await this.regulator.fail(key, CODE_POLICY)
    await this.audit.append({ action: 'aws_mfa.code_rejected', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { reason } })
    if (verdict.justLocked) {
      await this.audit.append({ action: 'aws_mfa.lockout', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { until: verdict.locked ? verdict.until.toISOString() : null } })
    }
    if (verdict.locked) throw lockedOutError(verdict.until, this.clock.now(), 'code entry')
  }

  private async tell (user: User, lines: Words[]): Promise<void> {
    // IAM users without an e-mail tag get a placeholder address that is never delivered.
    if (user.email.endsWith('.invalid')) return
    try {
      await this.notifier.accountNotice(user, { subject: words('email.aws_subject'), lines })
    } catch (err) {
      // The device stands; the failure is visible in the log and the audit trail.
      this.log.error({ err }, 'AWS MFA change email could not be sent')
      await this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: user.id, details: { message: 'aws method added', reason: (err as Error).message } })
    }
  }
}
