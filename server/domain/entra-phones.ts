import type { CountryCode } from 'libphonenumber-js'
import type { AuditLog } from './audit.ts'
import { maskPhone } from './phone.ts'
import { ProviderError, type ProviderPage } from './provider.ts'
import type { Actor, User } from './users.ts'

/** One user's line in a pre-population report, as the Entra adapter plans and applies it. */
export interface PhonePushLine {
  externalId: string
  action: 'create' | 'update' | 'unchanged' | 'invalid'
  /** E.164 afterwards (null for invalid). */
  phone: string | null
  previous: string | null
  reason?: string
  applied: boolean
}

/** The Entra operations on the mobile phone method (contracts 1.6); the Entra adapter implements them. */
export interface EntraPhonePort {
  setMobilePhone(externalId: string, e164: string): Promise<'create' | 'update' | 'unchanged'>
  prepopulatePhones(users: ReadonlyArray<{ externalId: string, phone?: string | null }>, options: { dryRun: boolean, defaultRegion: CountryCode }): Promise<PhonePushLine[]>
  /** Live directory listing (the configured phone attribute is in ProviderUser.phone). */
  listUsers(cursor: string | null): Promise<ProviderPage>
}

export interface EntraPhoneStore {
  /** Enabled Entra users of the portal that hold a pinned (directory) number. */
  entraUsersWithPhones(): Array<{ userId: string, email: string, externalId: string, phone: string }>
  /** Portal users of provider entra by object id, for naming report lines. */
  entraUsersByExternalId(externalIds: readonly string[]): Map<string, { userId: string, email: string }>
}

export type PhonePushResult = { pushed: true, action: 'create' | 'update' | 'unchanged' } | { pushed: false, reason: string }

export interface PrepopulateOptions {
  dryRun: boolean
  /** Read numbers live from the directory's configured attribute instead of the portal's pinned copy. */
  fromDirectory?: boolean
}

export interface PrepopulateReport {
  dryRun: boolean
  source: 'portal' | 'directory'
  counts: Record<PhonePushLine['action'] | 'failed', number>
  users: Array<PhonePushLine & { userId: string | null, email: string | null }>
}

/**
 * Entra users' MFA phones (DESIGN.md Providers, phone row): a number the portal verified by code becomes the user's
 * `mobile` method in Entra, and directory numbers can be pushed in bulk (pre-population) with a dry run first.
 */
export class EntraPhoneService {
  constructor (
    private readonly port: EntraPhonePort,
    private readonly store: EntraPhoneStore,
    private readonly audit: AuditLog,
    private readonly defaultRegion: CountryCode
  ) {}

  /**
   * Writes a just-verified phone to Entra. Never throws for a provider failure: the portal method is already saved
   * and stays; the failure is audited for admins and reported for a gentle notice.
   */
  async pushVerified (user: User, e164: string): Promise<PhonePushResult> {
    if (user.provider !== 'entra' || user.externalId === null) return { pushed: false, reason: 'not an Entra user' }
    try {
      const action = await this.port.setMobilePhone(user.externalId, e164)
      this.audit.append({ action: 'entra.phone_pushed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { result: action, phone: maskPhone(e164) } })
      return { pushed: true, action }
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err
      const reason = err.message.slice(0, 300)
      this.audit.append({ action: 'entra.phone_push_failed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { phone: maskPhone(e164), code: err.code, reason } })
      return { pushed: false, reason }
    }
  }

  /**
   * Plans (dry run) or writes each Entra user's mobile method from their directory number; one report line per
   * user. Numbers that cannot be read are reported as invalid and never pushed.
   */
  async prepopulate (options: PrepopulateOptions, actor: Actor): Promise<PrepopulateReport> {
    const source = options.fromDirectory === true ? 'directory' : 'portal'
    const users = source === 'directory' ? await this.directoryPhones() : this.store.entraUsersWithPhones()
    const lines = users.length === 0 ? [] : await this.port.prepopulatePhones(users, { dryRun: options.dryRun, defaultRegion: this.defaultRegion })
    const known = this.store.entraUsersByExternalId(lines.map((l) => l.externalId))
    const report: PrepopulateReport = {
      dryRun: options.dryRun,
      source,
      counts: { create: 0, update: 0, unchanged: 0, invalid: 0, failed: 0 },
      users: lines.map((line) => ({ ...line, userId: known.get(line.externalId)?.userId ?? null, email: known.get(line.externalId)?.email ?? null }))
    }
    for (const line of lines) {
      // A planned write that did not happen in a real run failed; say so rather than count it as done.
      const failed = !options.dryRun && (line.action === 'create' || line.action === 'update') && !line.applied
      report.counts[failed ? 'failed' : line.action]++
    }
    if (!options.dryRun) {
      this.audit.append({ action: 'entra.phones_prepopulated', actorId: actor.id, actorLabel: actor.label, details: { source, ...report.counts }, ip: actor.ip, userAgent: actor.userAgent })
    }
    return report
  }

  private async directoryPhones (): Promise<Array<{ externalId: string, phone: string | null }>> {
    const users: Array<{ externalId: string, phone: string | null }> = []
    let cursor: string | null = null
    do {
      const page: ProviderPage = await this.port.listUsers(cursor)
      for (const u of page.users) if (u.enabled && u.phone !== undefined && u.phone !== null) users.push({ externalId: u.externalId, phone: u.phone })
      cursor = page.next
    } while (cursor !== null)
    return users
  }
}
