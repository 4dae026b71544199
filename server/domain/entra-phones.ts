import type { CountryCode } from 'libphonenumber-js'
import type { AuditLog } from './audit.ts'
import type { ChangeContext, EnrollmentGuard } from './enrollment-guard.ts'
import { maskPhone } from './phone.ts'
import { ProviderError, type ProviderPage } from './provider.ts'
import type { Actor, Role, User } from './users.ts'

/**
 * One user's line in a pre-population report, as the Entra adapter plans and applies it. Pre-population only ever
 * creates: 'conflict' is a user who already has another mobile number in Entra, reported and left as it is.
 */
export interface PhonePushLine {
  externalId: string
  action: 'create' | 'unchanged' | 'conflict' | 'invalid'
  /** E.164 from the directory (null for invalid). */
  phone: string | null
  previous: string | null
  reason?: string
  applied: boolean
}

/** The Entra operations on the mobile phone method (contracts 1.6); the Entra adapter implements them. */
export interface EntraPhonePort {
  /** Creates the mobile method; replaces another number only with `replaceExisting` ('conflict' otherwise, nothing written). */
  setMobilePhone(externalId: string, e164: string, options: { replaceExisting: boolean }): Promise<'create' | 'update' | 'unchanged' | 'conflict'>
  prepopulatePhones(users: ReadonlyArray<{ externalId: string, phone?: string | null }>, options: { dryRun: boolean, defaultRegion: CountryCode }): Promise<PhonePushLine[]>
  /** Live directory listing (the configured phone attribute is in ProviderUser.phone). */
  listUsers(cursor: string | null): Promise<ProviderPage>
}

/** A portal user of provider entra, as pre-population needs to know them. */
export interface EntraPhoneUser {
  userId: string
  email: string
  privileged: boolean
  role: Role
}

export interface EntraPhoneStore {
  /** Enabled Entra users of the portal that hold a pinned (directory) number. */
  entraUsersWithPhones(): Promise<Array<EntraPhoneUser & { externalId: string, phone: string }>>
  /** Portal users of provider entra by object id, for naming report lines and knowing who is privileged. */
  entraUsersByExternalId(externalIds: readonly string[]): Promise<Map<string, EntraPhoneUser>>
}

export type PhonePushResult =
  | { pushed: true, action: 'create' | 'update' | 'unchanged' }
  /** `kept`: Entra holds another number and it was not replaced (no step-up with an existing method). */
  | { pushed: false, reason: string, kept?: 'existing_number' }

export interface PrepopulateOptions {
  dryRun: boolean
  /** Read numbers live from the directory's configured attribute instead of the portal's pinned copy. */
  fromDirectory?: boolean
  /**
   * Also create mobile methods for privileged users (directory admins, staff). Only for callers allowed to touch
   * them: the phones:write-privileged API scope, or the operator's `entra-phones --include-privileged`.
   */
  includePrivileged?: boolean
  /** Recorded with every audit event of the run (e.g. the API token's id). */
  auditDetails?: Record<string, unknown>
}

export type PrefillAction = PhonePushLine['action'] | 'skipped_privileged'

export interface PrepopulateReport {
  dryRun: boolean
  source: 'portal' | 'directory'
  includePrivileged: boolean
  counts: Record<PrefillAction | 'failed', number>
  users: Array<Omit<PhonePushLine, 'action'> & { action: PrefillAction, userId: string | null, email: string | null }>
}

const SKIPPED_REASON = 'A privileged account: its MFA phone is only pre-populated by an administrator\'s token (phones:write-privileged) or the operator.'

/**
 * Entra users' MFA phones (DESIGN.md Providers, phone row): a number the portal verified by code becomes the user's
 * `mobile` method in Entra, and directory numbers can be pushed in bulk (pre-population) with a dry run first.
 * Neither ever replaces a number Entra already holds without the owner's proof (issue #12): pre-population reports
 * such a user as a conflict, and a verified phone replaces one only after a step-up with an existing method.
 */
export class EntraPhoneService {
  constructor (
    private readonly port: EntraPhonePort,
    private readonly store: EntraPhoneStore,
    private readonly guard: EnrollmentGuard,
    private readonly audit: AuditLog,
    private readonly defaultRegion: CountryCode
  ) {}

  /**
   * Writes a just-verified phone to Entra. Never throws for a provider failure: the portal method is already saved
   * and stays; the failure is audited for admins and reported for a gentle notice. Another mobile number in Entra is
   * replaced only when this session proved an existing method (not a pass session, not a reset window).
   */
  async pushVerified (user: User, e164: string, context: ChangeContext): Promise<PhonePushResult> {
    if (user.provider !== 'entra' || user.externalId === null) return { pushed: false, reason: 'not an Entra user' }
    const replaceExisting = this.guard.hasProvenExistingMethod(context)
    try {
      const action = await this.port.setMobilePhone(user.externalId, e164, { replaceExisting })
      if (action === 'conflict') {
        await this.audit.append({ action: 'entra.phone_push_refused', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { reason: 'existing_number_needs_step_up', phone: maskPhone(e164), passSession: context.passSession } })
        return { pushed: false, reason: 'Entra holds another mobile number', kept: 'existing_number' }
      }
      await this.audit.append({ action: 'entra.phone_pushed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { result: action, phone: maskPhone(e164) } })
      return { pushed: true, action }
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err
      const reason = err.message.slice(0, 300)
      await this.audit.append({ action: 'entra.phone_push_failed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { phone: maskPhone(e164), code: err.code, reason } })
      return { pushed: false, reason }
    }
  }

  /**
   * Plans (dry run) or creates each Entra user's mobile method from their directory number; one report line per
   * user. Only creates: an existing different number is a 'conflict', the same one 'unchanged'. Privileged users
   * (directory admins, and portal staff) are 'skipped_privileged' unless `includePrivileged`; they are not even read.
   * A real run audits each created, conflicting, skipped or failed user, then the run's counts.
   */
  async prepopulate (options: PrepopulateOptions, actor: Actor): Promise<PrepopulateReport> {
    const source = options.fromDirectory === true ? 'directory' : 'portal'
    const includePrivileged = options.includePrivileged === true
    const candidates = source === 'directory' ? await this.directoryPhones() : await this.store.entraUsersWithPhones()
    const known = await this.store.entraUsersByExternalId(candidates.map((c) => c.externalId))
    const privileged = (c: { externalId: string, privileged: boolean }): boolean => {
      const portal = known.get(c.externalId)
      return c.privileged || portal?.privileged === true || (portal !== undefined && portal.role !== 'user')
    }
    const skipped = new Set(includePrivileged ? [] : candidates.filter(privileged).map((c) => c.externalId))
    const pushed = candidates.filter((c) => !skipped.has(c.externalId)).map((c) => ({ externalId: c.externalId, phone: c.phone }))
    const planned = new Map((pushed.length === 0 ? [] : await this.port.prepopulatePhones(pushed, { dryRun: options.dryRun, defaultRegion: this.defaultRegion })).map((l) => [l.externalId, l]))

    const report: PrepopulateReport = {
      dryRun: options.dryRun,
      source,
      includePrivileged,
      counts: { create: 0, unchanged: 0, conflict: 0, skipped_privileged: 0, invalid: 0, failed: 0 },
      users: []
    }
    for (const candidate of candidates) {
      const line: Omit<PhonePushLine, 'action'> & { action: PrefillAction } = planned.get(candidate.externalId) ??
        { externalId: candidate.externalId, action: 'skipped_privileged', phone: null, previous: null, reason: SKIPPED_REASON, applied: false }
      const who = known.get(candidate.externalId)
      report.users.push({ ...line, userId: who?.userId ?? null, email: who?.email ?? null })
      // A planned write that did not happen in a real run failed; say so rather than count it as done.
      const failed = !options.dryRun && line.action === 'create' && !line.applied
      report.counts[failed ? 'failed' : line.action]++
    }
    if (!options.dryRun) {
      for (const line of report.users) await this.auditLine(line, { source, includePrivileged, ...options.auditDetails }, actor)
      await this.audit.append({ action: 'entra.phones_prepopulated', actorId: actor.id, actorLabel: actor.label, details: { ...options.auditDetails, source, includePrivileged, ...report.counts }, ip: actor.ip, userAgent: actor.userAgent })
    }
    return report
  }

  /** One audit event per user whose line is worth a person's attention; unchanged and invalid lines are counted only. */
  private async auditLine (line: PrepopulateReport['users'][number], details: Record<string, unknown>, actor: Actor): Promise<void> {
    const result = line.action === 'create' ? (line.applied ? 'created' : 'failed') : line.action
    if (result !== 'created' && result !== 'failed' && result !== 'conflict' && result !== 'skipped_privileged') return
    await this.audit.append({
      action: 'entra.phone_prefill', actorId: actor.id, actorLabel: actor.label, subjectUserId: line.userId,
      details: {
        ...details,
        result,
        externalId: line.externalId,
        phone: line.phone === null ? null : maskPhone(line.phone),
        previous: line.previous === null ? null : maskPhone(line.previous),
        ...(result === 'failed' ? { reason: line.reason?.slice(0, 300) ?? null } : {})
      },
      ip: actor.ip,
      userAgent: actor.userAgent
    })
  }

  private async directoryPhones (): Promise<Array<{ externalId: string, phone: string | null, privileged: boolean }>> {
    const users: Array<{ externalId: string, phone: string | null, privileged: boolean }> = []
    let cursor: string | null = null
    do {
      const page: ProviderPage = await this.port.listUsers(cursor)
      for (const u of page.users) if (u.enabled && u.phone !== undefined && u.phone !== null) users.push({ externalId: u.externalId, phone: u.phone, privileged: u.privileged })
      cursor = page.next
    } while (cursor !== null)
    return users
  }
}
