/**
 * Methods that age out (issue #17 item 5): a campaign may say "text messages count until DATE, then count as weak /
 * not at all". Before the date, people who rely on text messages are reminded (the campaign's reminder offsets,
 * counted back from the date); on the date their states are re-derived, and whoever drops below the policy gets a
 * new deadline with the campaign's grace period (deadlines.ts `smsSunsetGrace`), never an immediate flip.
 */
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import type { Campaign } from './engine.ts'
import type { Logger } from './method-lifecycle.ts'
import { assessMethods, type MethodPolicy } from './methods.ts'
import { words, type AccountNotice, type AccountNotifier } from './notifications.ts'
import { countingMethods } from './protection.ts'
import { dueOffset } from './reminders.ts'

const DAY_MS = 24 * 3_600_000

/** Someone whose deadline comes from the campaign and who holds a phone, in the portal or at their directory. */
export interface PhoneHolder {
  userId: string
  email: string
  displayName: string
  /** The reminder's language and zone (null: DEFAULT_LOCALE / DEFAULT_TIME_ZONE). */
  locale?: string | null
  timeZone?: string | null
  provider: string
  privileged: boolean
  portalMethods: string[]
  providerMethods: string[]
  recoveryCodes: number
}

export interface SmsSunsetStore {
  /** The campaign's users (deadline from it, not exempt, not disabled) holding a phone anywhere, by user id. */
  phoneHoldersAfter(campaignId: string, cursor: string | null, limit: number): Promise<PhoneHolder[]>
  /** Whether the campaign's sunset at `sunsetAt` was carried out already. */
  hasRun(campaignId: string, sunsetAt: Date): Promise<boolean>
  /** Records the sunset carried out; false when another process recorded it first. */
  recordRun(campaignId: string, sunsetAt: Date, at: Date, users: number, dropped: number): Promise<boolean>
  /** Records a reminder before the sunset once; false when it was recorded already. */
  claimReminder(userId: string, campaignId: string, sunsetAt: Date, offsetDays: number, at: Date): Promise<boolean>
}

/**
 * What the sunset does to someone holding these kinds: 'drops' below the policy (a new deadline follows), or
 * 'weakens' (still counts, reported as weak), or nothing.
 */
export function sunsetEffect (privileged: boolean, kinds: readonly string[], policy: MethodPolicy): 'drops' | 'weakens' | null {
  if (policy.smsSunsetAt == null) return null
  const before = assessMethods(privileged, kinds, policy, new Date(policy.smsSunsetAt.getTime() - 1))
  const after = assessMethods(privileged, kinds, policy, policy.smsSunsetAt)
  if (!before.enrolled) return null
  if (!after.enrolled) return 'drops'
  return after.weak && !before.weak ? 'weakens' : null
}

export interface SunsetReport {
  /** Campaigns whose sunset was carried out in this run. */
  applied: number
  /** Users re-derived, and of them those who dropped below the policy (a new deadline). */
  rederived: number
  dropped: number
  reminders: number
}

export class SmsSunsetService {
  constructor (
    private readonly store: SmsSunsetStore,
    private readonly rollout: { refreshUser(userId: string): Promise<unknown> },
    private readonly notifier: AccountNotifier,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly portalUrl: string,
    private readonly log: Logger
  ) {}

  /** Carries out sunsets that have come, then sends the reminders due before those still ahead. Safe to overlap. */
  async run (campaigns: Campaign[], batchSize = 500): Promise<SunsetReport> {
    const report: SunsetReport = { applied: 0, rederived: 0, dropped: 0, reminders: 0 }
    for (const campaign of campaigns) {
      const at = campaign.smsSunsetAt
      if (at === null) continue
      if (this.clock.now() >= at) await this.apply(campaign, at, report, batchSize)
      else report.reminders += await this.remind(campaign, at, batchSize)
    }
    return report
  }

  /**
   * The date has come: every phone holder of the campaign is re-derived (the engine applies the new policy and, for
   * those who drop, the new deadline), then the run is recorded and audited once. Re-deriving twice is harmless, so
   * a crash before the record only means the next run does it again.
   */
  private async apply (campaign: Campaign, at: Date, report: SunsetReport, batchSize: number): Promise<void> {
    if (await this.store.hasRun(campaign.id, at)) return
    let users = 0
    let dropped = 0
    let cursor: string | null = null
    for (;;) {
      const batch = await this.store.phoneHoldersAfter(campaign.id, cursor, batchSize)
      if (batch.length === 0) break
      for (const holder of batch) {
        await this.rollout.refreshUser(holder.userId)
        users++
        if (sunsetEffect(holder.privileged, kindsOf(holder), campaign) === 'drops') dropped++
      }
      cursor = batch[batch.length - 1].userId
    }
    if (!await this.store.recordRun(campaign.id, at, this.clock.now(), users, dropped)) return
    await this.audit.append({
      action: 'campaign.sms_sunset_applied',
      actorLabel: 'engine',
      details: { campaignId: campaign.id, name: campaign.name, sunsetAt: at.toISOString(), becomes: campaign.smsAfterSunset, users, dropped, graceDays: campaign.smsSunsetGraceDays }
    })
    report.applied++
    report.rederived += users
    report.dropped += dropped
  }

  /** Reminders before the date, at the campaign's reminder offsets counted back from it; one per user and offset. */
  private async remind (campaign: Campaign, at: Date, batchSize: number): Promise<number> {
    const now = this.clock.now()
    const horizon = Math.max(0, ...campaign.reminderOffsets) * DAY_MS
    if (at.getTime() - now.getTime() > horizon) return 0
    const offset = dueOffset(campaign.reminderOffsets, at, now)
    if (offset === null) return 0
    let sent = 0
    let cursor: string | null = null
    for (;;) {
      const batch = await this.store.phoneHoldersAfter(campaign.id, cursor, batchSize)
      if (batch.length === 0) return sent
      for (const holder of batch) {
        const effect = sunsetEffect(holder.privileged, kindsOf(holder), campaign)
        // Claimed before sending: at most one reminder per user, sunset and offset, whatever runs at once.
        if (effect === null || !await this.store.claimReminder(holder.userId, campaign.id, at, offset, now)) continue
        try {
          await this.notifier.accountNotice(holder, sunsetReminder(at, now, effect, campaign.smsSunsetGraceDays, this.portalUrl))
          await this.audit.append({ action: 'reminder.sms_sunset_sent', actorLabel: 'engine', subjectUserId: holder.userId, details: { campaignId: campaign.id, sunsetAt: at.toISOString(), offsetDays: offset, effect } })
          sent++
        } catch (err) {
          this.log.error({ err }, 'SMS sunset reminder could not be sent')
          await this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: holder.userId, details: { message: 'sms sunset reminder', offsetDays: offset, reason: (err as Error).message } })
        }
      }
      cursor = batch[batch.length - 1].userId
    }
  }
}

function kindsOf (holder: PhoneHolder): string[] {
  return countingMethods({ provider: holder.provider, portalMethods: holder.portalMethods, providerMethods: holder.providerMethods, recoveryCodes: holder.recoveryCodes })
}

/** The reminder's words: when text messages stop counting, what follows, and where to add another method. */
export function sunsetReminder (at: Date, now: Date, effect: 'drops' | 'weakens', graceDays: number, portalUrl: string): AccountNotice {
  const days = Math.ceil((at.getTime() - now.getTime()) / DAY_MS)
  // Keys and values (locales/*/email.json): the notifier writes them in the holder's language, the date in their zone.
  return {
    subject: words(effect === 'drops' ? 'email.sunset_drops_subject' : 'email.sunset_weakens_subject', { days }),
    lines: effect === 'drops'
      ? [
          words('email.sunset_drops_from', { day: at }),
          words('email.sunset_add_before', { url: portalUrl }),
          words('email.sunset_new_deadline', { day: at, graceDays })
        ]
      : [
          words('email.sunset_weakens_from', { day: at }),
          words('email.sunset_safer', { url: portalUrl })
        ]
  }
}
