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
}

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
}

export type UpsertResult =
  | { userId: string, created: boolean, adopted: boolean }
  | { conflict: string, existingUserId: string }

/**
 * Why a portal account that shares a directory user's email must not become that directory user, or null when it
 * may. An email is a claim, not an identity (a directory admin, or anyone able to set an IAM tag, can write any
 * address): adopting would hand the account's methods and sessions to the directory entry and let the directory
 * disable it. So staff accounts are never adopted, nor is any account that has signed in, nor one that already
 * belongs to a directory entry. What remains is the account imported before the directory was connected.
 */
export function adoptionRefusal (account: { provider: string, externalId: string | null, role: string, signedIn: number | boolean }): string | null {
  if (account.externalId !== null) return `belongs to ${account.provider} user ${account.externalId}`
  if (account.role !== 'user') return `belongs to a portal ${account.role} account, which a directory never takes over`
  if (account.signedIn !== 0 && account.signedIn !== false) return 'belongs to a portal account that has signed in, which a directory never takes over by email'
  return null
}

export interface DirectorySyncStore {
  begin(provider: string, now: Date): number
  /**
   * Inserts or updates by (provider, external id). A portal account with the same email is adopted only where
   * adoptionRefusal allows it; otherwise the record is a conflict and nothing is written.
   */
  upsert(provider: string, record: DirectoryRecord, now: Date): UpsertResult
  /** Whether (provider, external id) is already known (disabled accounts are only updated, never created). */
  exists(provider: string, externalId: string): boolean
  /** Marks users of the provider not seen since `since` as disabled (gone from the directory); returns their ids. */
  disableUnseen(provider: string, since: Date): string[]
  finish(id: number, result: Pick<SyncRun, 'status' | 'seen' | 'created' | 'updated' | 'skipped' | 'registrationSource' | 'error'>, now: Date): void
  latest(provider: string): SyncRun | undefined
}

export interface SyncReport extends Omit<SyncRun, 'id' | 'provider' | 'startedAt' | 'finishedAt' | 'status'> {
  provider: string
  disabled: number
  invalidPhones: number
}

/**
 * Brings the portal's users in line with a provider's directory (DESIGN.md "Providers"): every page of users,
 * registration truth, privileged flags and groups. Re-running updates, never duplicates; disabled and vanished
 * accounts are switched off in the portal; each changed user's rollout state is re-derived.
 */
export class DirectorySyncService {
  constructor (
    private readonly store: DirectorySyncStore,
    private readonly engine: Pick<EnforcementEngine, 'refreshUser'>,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly defaultRegion: CountryCode
  ) {}

  async sync (provider: IdentityProvider, actor: { id: string | null, label: string } = { id: null, label: 'sync' }): Promise<SyncReport> {
    if (provider.name === 'local') throw new DomainError('not_a_directory', 'The local provider has no directory to sync.')
    const startedAt = this.clock.now()
    const runId = this.store.begin(provider.name, startedAt)
    const report: SyncReport = { provider: provider.name, seen: 0, created: 0, updated: 0, skipped: 0, disabled: 0, invalidPhones: 0, registrationSource: null, error: null }
    try {
      let cursor: string | null = null
      do {
        const page = await provider.listUsers(cursor)
        report.registrationSource = page.registrationSource ?? report.registrationSource
        for (const user of page.users) {
          report.seen++
          // A disabled account the portal never knew stays out; a known one is switched off below.
          if (!user.enabled && !this.store.exists(provider.name, user.externalId)) { report.skipped++; continue }
          const record = await this.record(provider, user, report)
          const result = this.store.upsert(provider.name, record, this.clock.now())
          if ('conflict' in result) {
            report.skipped++
            this.audit.append({ action: 'directory.adoption_refused', actorId: actor.id, actorLabel: actor.label, subjectUserId: result.existingUserId, details: { provider: provider.name, externalId: record.externalId, reason: result.conflict } })
            continue
          }
          if (result.adopted) {
            this.audit.append({ action: 'directory.adopted', actorId: actor.id, actorLabel: actor.label, subjectUserId: result.userId, details: { provider: provider.name, externalId: record.externalId, email: record.email } })
          }
          if (result.created) report.created++
          else report.updated++
          this.engine.refreshUser(result.userId)
        }
        cursor = page.next
      } while (cursor !== null)
      const gone = this.store.disableUnseen(provider.name, startedAt)
      for (const userId of gone) this.engine.refreshUser(userId)
      report.disabled = gone.length
      this.store.finish(runId, { ...report, status: 'done' }, this.clock.now())
      this.audit.append({ action: 'directory.synced', actorId: actor.id, actorLabel: actor.label, details: { ...report } })
      return report
    } catch (err) {
      report.error = (err instanceof Error ? err.message : String(err)).slice(0, 500)
      this.store.finish(runId, { ...report, status: 'failed' }, this.clock.now())
      this.audit.append({ action: 'directory.sync_failed', actorId: actor.id, actorLabel: actor.label, details: { ...report } })
      throw err
    }
  }

  latest (provider: string): SyncRun | undefined {
    return this.store.latest(provider)
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
      email: user.email.trim() === '' ? `${user.externalId.toLowerCase()}@${provider.name}.invalid` : user.email.trim().toLowerCase(),
      displayName: user.displayName.trim() === '' ? user.externalId : user.displayName.trim(),
      privileged: user.privileged,
      groups: user.groups,
      disabled: !user.enabled,
      methods: [...new Set(methods)].sort(),
      phone,
      attributes: { ...user.attributes, targetable: user.targetable ?? true }
    }
  }
}
