import type { CountryCode } from 'libphonenumber-js'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import type { EnforcementEngine } from './engine.ts'
import { DomainError } from './errors.ts'
import { parsePhone } from './phone.ts'
import type { IdentityProvider, ProviderUser } from './provider.ts'

/** One directory user as the portal stores it. */
export interface DirectoryRecord {
  externalId: string
  email: string
  displayName: string
  privileged: boolean
  groups: string[]
  disabled: boolean
  methods: string[]
  /** E.164, or null (none, or not a valid number). */
  phone: string | null
  attributes: Record<string, string | number | boolean | null>
  /** When the directory created the account (starts the new-user window); null when it does not say. */
  createdAt: Date | null
  /**
   * Ids an earlier version of the portal stored for this user (AWS: the IAM user name, before the user id became
   * the identity). A row found only under one of these, for the same provider, is this user: its id is rewritten.
   */
  formerExternalIds?: string[]
}

/** A portal account taken over by a directory user because the e-mail matched (shown on the dashboard, audited). */
export interface SyncAdoption {
  name: string
  email: string
}

/**
 * A directory user whose e-mail another account already holds: synced under its own identity with a placeholder
 * address instead (never delivered to), enforced like anyone else, and named here for an admin to sort out.
 */
export interface SyncConflict {
  name: string
  email: string
  reason: string
}

/** How many adoptions and conflicts a run keeps by name (the counts are complete). */
export const SYNC_NAMES_KEPT = 100

export interface SyncRun {
  id: number
  provider: string
  startedAt: Date
  finishedAt: Date | null
  status: 'running' | 'done' | 'failed'
  seen: number
  created: number
  updated: number
  skipped: number
  registrationSource: string | null
  error: string | null
  adopted: SyncAdoption[]
  conflicts: SyncConflict[]
}

export type UpsertResult =
  | { userId: string, created: boolean, adopted: boolean }
  /**
   * Another account holds the record's e-mail; nothing was written. `adoption`: the record is new and the account
   * could not be taken over. `storedEmail`: what the directory user's own row holds now (an existing user only).
   */
  | { conflict: string, existingUserId: string, adoption: boolean, storedEmail: string | null }

/**
 * Why a portal account that shares a directory user's email must not become that directory user, or null when it
 * may. An email is a claim, not an identity (a directory admin, or anyone able to set an IAM tag, can write any
 * address): adopting would hand the account's methods and sessions to the directory entry and let the directory
 * disable it. So staff accounts are never adopted, nor is any account that has signed in, nor one that already
 * belongs to a directory entry. What remains is the account imported before the directory was connected.
 */
export function adoptionRefusal (account: { provider: string, externalId: string | null, displayName?: string, role: string, signedIn: number | boolean }): string | null {
  if (account.externalId !== null) return `belongs to ${directoryUserName(account.provider, account.externalId, account.displayName)}`
  if (account.role !== 'user') return `belongs to a portal ${account.role} account, which a directory never takes over`
  if (account.signedIn !== 0 && account.signedIn !== false) return 'belongs to a portal account that has signed in, which a directory never takes over by email'
  return null
}

/** A directory user as a sentence names it: "aws user alice (AIDA…)". */
export function directoryUserName (provider: string, externalId: string, displayName?: string): string {
  return displayName === undefined || displayName === '' || displayName === externalId ? `${provider} user ${externalId}` : `${provider} user ${displayName} (${externalId})`
}

export interface DirectorySyncStore {
  begin(provider: string, now: Date): Promise<number>
  /**
   * Inserts or updates by (provider, external id), else by one of the record's former ids (rewriting it). A portal
   * account with the same email is adopted only where adoptionRefusal allows it; an email held by any other
   * account is a conflict and nothing is written.
   */
  upsert(provider: string, record: DirectoryRecord, now: Date): Promise<UpsertResult>
  /** Whether (provider, external id) is already known (disabled accounts are only updated, never created). */
  exists(provider: string, externalId: string): Promise<boolean>
  /** Marks users of the provider not seen since `since` as disabled (gone from the directory); returns their ids. */
  disableUnseen(provider: string, since: Date): Promise<string[]>
  finish(id: number, result: Pick<SyncRun, 'status' | 'seen' | 'created' | 'updated' | 'skipped' | 'registrationSource' | 'error' | 'adopted' | 'conflicts'>, now: Date): Promise<void>
  latest(provider: string): Promise<SyncRun | undefined>
}

export interface SyncReport extends Omit<SyncRun, 'id' | 'provider' | 'startedAt' | 'finishedAt' | 'status'> {
  provider: string
  disabled: number
  invalidPhones: number
  /** Complete counts; `adopted` and `conflicts` name the first SYNC_NAMES_KEPT. */
  adoptedCount: number
  conflictCount: number
}

/** The address of a directory user without a usable one of its own: never delivered, unique, naming the user. */
export function placeholderEmail (provider: string, externalId: string): string {
  return `${externalId.toLowerCase()}@${provider}.invalid`
}

/** The adoptions and conflicts of a sync in one sentence each, for the CLI and the dashboard ('' when none). */
export function describeSyncNames (run: Pick<SyncRun, 'adopted' | 'conflicts'> & { adoptedCount?: number, conflictCount?: number }): string[] {
  const lines: string[] = []
  const more = (count: number | undefined, shown: number): string => count !== undefined && count > shown ? ` and ${count - shown} more` : ''
  if (run.conflicts.length > 0) {
    lines.push(`e-mail already in use, synced without it: ${run.conflicts.map((c) => `${c.name} (${c.email}: ${c.reason})`).join('; ')}${more(run.conflictCount, run.conflicts.length)}`)
  }
  if (run.adopted.length > 0) {
    lines.push(`portal accounts taken over by matching e-mail: ${run.adopted.map((a) => `${a.email} by ${a.name}`).join('; ')}${more(run.adoptedCount, run.adopted.length)}`)
  }
  return lines
}

/**
 * Brings the portal's users in line with a provider's directory (DESIGN.md "Providers"): every page of users,
 * registration truth, privileged flags and groups. Re-running updates, never duplicates; disabled and vanished
 * accounts are switched off in the portal; each changed user's rollout state is re-derived.
 */
export class DirectorySyncService {
  constructor (
    private readonly store: DirectorySyncStore,
    private readonly engine: Pick<EnforcementEngine, 'refreshUser' | 'retryWaitingNow'>,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly defaultRegion: CountryCode
  ) {}

  async sync (provider: IdentityProvider, actor: { id: string | null, label: string } = { id: null, label: 'sync' }): Promise<SyncReport> {
    if (provider.name === 'local') throw new DomainError('not_a_directory', 'The local provider has no directory to sync.')
    const startedAt = this.clock.now()
    const runId = await this.store.begin(provider.name, startedAt)
    const report: SyncReport = {
      provider: provider.name, seen: 0, created: 0, updated: 0, skipped: 0, disabled: 0, invalidPhones: 0, registrationSource: null, error: null,
      adopted: [], conflicts: [], adoptedCount: 0, conflictCount: 0
    }
    try {
      let cursor: string | null = null
      do {
        const page = await provider.listUsers(cursor)
        report.registrationSource = page.registrationSource ?? report.registrationSource
        for (const user of page.users) {
          report.seen++
          // A disabled account the portal never knew stays out; a known one is switched off below.
          if (!user.enabled && !await this.store.exists(provider.name, user.externalId)) { report.skipped++; continue }
          const record = await this.record(provider, user, report)
          const result = await this.upsert(provider.name, record, report, actor)
          if (result === null) { report.skipped++; continue }
          if (result.adopted) {
            report.adoptedCount++
            if (report.adopted.length < SYNC_NAMES_KEPT) report.adopted.push({ name: record.displayName, email: record.email })
            await this.audit.append({ action: 'directory.adopted', actorId: actor.id, actorLabel: actor.label, subjectUserId: result.userId, details: { provider: provider.name, externalId: record.externalId, name: record.displayName, email: record.email } })
          }
          if (result.created) report.created++
          else report.updated++
          await this.engine.refreshUser(result.userId)
        }
        cursor = page.next
      } while (cursor !== null)
      const gone = await this.store.disableUnseen(provider.name, startedAt)
      for (const userId of gone) await this.engine.refreshUser(userId)
      report.disabled = gone.length
      await this.store.finish(runId, { ...report, status: 'done' }, this.clock.now())
      await this.audit.append({ action: 'directory.synced', actorId: actor.id, actorLabel: actor.label, details: { ...report } })
      // The provider answers again: enforcement waiting out an outage there is tried at the next sweep, not hours later.
      await this.engine.retryWaitingNow(provider.name)
      return report
    } catch (err) {
      report.error = (err instanceof Error ? err.message : String(err)).slice(0, 500)
      await this.store.finish(runId, { ...report, status: 'failed' }, this.clock.now())
      await this.audit.append({ action: 'directory.sync_failed', actorId: actor.id, actorLabel: actor.label, details: { ...report } })
      throw err
    }
  }

  async latest (provider: string): Promise<SyncRun | undefined> {
    return this.store.latest(provider)
  }

  /**
   * Writes one directory user. An e-mail that another account holds (a second IAM user with the same tag, a tag
   * changed to someone else's address, a staff account's address) is a claim, not an identity: the user is still
   * synced under its own id, with a placeholder address, and enforced like anyone else. The conflict is named in
   * the run's report and audited once, when it first appears (not at every hourly run while it lasts).
   */
  private async upsert (provider: string, record: DirectoryRecord, report: SyncReport, actor: { id: string | null, label: string }): Promise<{ userId: string, created: boolean, adopted: boolean } | null> {
    const first = await this.store.upsert(provider, record, this.clock.now())
    if (!('conflict' in first)) return first
    const placeholder = placeholderEmail(provider, record.externalId)
    report.conflictCount++
    if (report.conflicts.length < SYNC_NAMES_KEPT) report.conflicts.push({ name: record.displayName, email: record.email, reason: first.conflict })
    if (first.storedEmail !== placeholder) {
      await this.audit.append({
        action: first.adoption ? 'directory.adoption_refused' : 'directory.email_conflict',
        actorId: actor.id,
        actorLabel: actor.label,
        subjectUserId: first.existingUserId,
        details: { provider, externalId: record.externalId, name: record.displayName, email: record.email, reason: first.conflict, syncedAs: placeholder }
      })
    }
    const second = await this.store.upsert(provider, { ...record, email: placeholder }, this.clock.now())
    // Only an address someone typed as another user's tag could hold the placeholder itself: then the user is left out.
    return 'conflict' in second ? null : second
  }

  private async record (provider: IdentityProvider, user: ProviderUser, report: SyncReport): Promise<DirectoryRecord> {
    let methods = user.methods
    if (methods === undefined) {
      const status = await provider.registrationStatus({ userId: '', externalId: user.externalId, email: user.email, enrolled: false })
      methods = status.methods
      report.registrationSource = status.source
    }
    let phone: string | null = null
    if (user.phone != null && user.phone.trim() !== '') {
      try {
        phone = parsePhone(user.phone, this.defaultRegion)
      } catch {
        report.invalidPhones++
      }
    }
    return {
      externalId: user.externalId,
      // Directories without email (IAM users) get an address that can never be delivered: it names them, nothing more.
      email: user.email.trim() === '' ? placeholderEmail(provider.name, user.externalId) : user.email.trim().toLowerCase(),
      displayName: user.displayName.trim() === '' ? user.externalId : user.displayName.trim(),
      privileged: user.privileged,
      groups: user.groups,
      disabled: !user.enabled,
      methods: [...new Set(methods)].sort(),
      phone,
      attributes: { ...user.attributes, targetable: user.targetable ?? true },
      createdAt: user.createdAt instanceof Date && !Number.isNaN(user.createdAt.getTime()) ? user.createdAt : null,
      ...(user.formerExternalIds === undefined ? {} : { formerExternalIds: user.formerExternalIds })
    }
  }
}
