import type { AuditLog } from './audit.ts'
import { deadlineCalendar } from './calendar.ts'
import type { Clock } from './clock.ts'
import { daysLeft } from './deadlines.ts'
import type { Campaign } from './engine.ts'
import type { Logger } from './method-lifecycle.ts'

const DAY_MS = 24 * 3_600_000

/** Someone still in their grace period, with no qualifying method. */
export interface ReminderCandidate {
  userId: string
  email: string
  displayName: string
  /** The language and zone the reminder is written in (null: DEFAULT_LOCALE / DEFAULT_TIME_ZONE). */
  locale?: string | null
  timeZone?: string | null
  campaignId: string
  deadline: Date
}

export interface ReminderStore {
  /** Pending users (no qualifying method) whose deadline falls within (now, now + horizon], by user id. */
  pendingAfter(cursor: string | null, now: Date, horizonMs: number, limit: number): Promise<ReminderCandidate[]>
  /** Records the reminder once; false when it was already recorded (another sweep got there first). */
  claim(userId: string, campaignId: string, offsetDays: number, at: Date): Promise<boolean>
}

/** Whom a reminder goes to, and the language and zone it is written in. */
export type ReminderRecipient = Pick<ReminderCandidate, 'email' | 'displayName' | 'locale' | 'timeZone'>

export interface ReminderMailer {
  /** `calendar` is the deadline as an .ics file (domain/calendar.ts), attached so people can plan it like a meeting. */
  remind(to: ReminderRecipient, reminder: { deadline: Date, daysLeft: number, enrollUrl: string, calendar: string }): Promise<void>
}

/**
 * The reminder due now for a deadline: the smallest offset whose moment has come. A user who joins late
 * gets the latest reminder only, not every one they missed.
 */
export function dueOffset (offsets: number[], deadline: Date, now: Date): number | null {
  if (deadline <= now) return null
  const crossed = offsets.filter((days) => now.getTime() >= deadline.getTime() - days * DAY_MS)
  return crossed.length === 0 ? null : Math.min(...crossed)
}

export class ReminderService {
  constructor (
    private readonly store: ReminderStore,
    private readonly mailer: ReminderMailer,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly enrollUrl: string,
    private readonly log: Logger
  ) {}

  /** Sends the reminders due now; safe to run from overlapping sweeps. Returns how many were sent. */
  async send (campaigns: Campaign[], batchSize = 500): Promise<number> {
    const byId = new Map(campaigns.map((c) => [c.id, c]))
    const horizon = Math.max(0, ...campaigns.flatMap((c) => c.reminderOffsets)) * DAY_MS
    const now = this.clock.now()
    let sent = 0
    let cursor: string | null = null
    for (;;) {
      const batch = await this.store.pendingAfter(cursor, now, horizon, batchSize)
      if (batch.length === 0) return sent
      for (const candidate of batch) {
        const campaign = byId.get(candidate.campaignId)
        const offset = campaign === undefined ? null : dueOffset(campaign.reminderOffsets, candidate.deadline, now)
        // Claimed before sending: at most one reminder per user, campaign and offset, whatever runs at once.
        if (offset === null || !await this.store.claim(candidate.userId, candidate.campaignId, offset, now)) continue
        try {
          const calendar = deadlineCalendar({ userId: candidate.userId, deadline: candidate.deadline, portalUrl: this.enrollUrl, now })
          await this.mailer.remind(candidate, { deadline: candidate.deadline, daysLeft: daysLeft(candidate.deadline, now), enrollUrl: this.enrollUrl, calendar })
          await this.audit.append({ action: 'reminder.sent', actorLabel: 'engine', subjectUserId: candidate.userId, details: { campaignId: candidate.campaignId, offsetDays: offset } })
          sent++
        } catch (err) {
          this.log.error({ err }, 'reminder could not be sent')
          await this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: candidate.userId, details: { message: 'reminder', offsetDays: offset, reason: (err as Error).message } })
        }
      }
      cursor = batch[batch.length - 1].userId
    }
  }
}
