import { and, asc, eq, gt, lte } from 'drizzle-orm'
import type { ReminderCandidate, ReminderStore } from '../../domain/reminders.ts'
import type { PgAccess } from './access.ts'
import { remindersSent, userStates, users } from './schema.ts'

export class PgReminderStore implements ReminderStore {
  constructor (private readonly access: PgAccess) {}

  async pendingAfter (cursor: string | null, now: Date, horizonMs: number, limit: number): Promise<ReminderCandidate[]> {
    const rows = await this.access.current.select({
      userId: userStates.userId, email: users.email, displayName: users.displayName, locale: users.locale, timeZone: users.timeZone, campaignId: userStates.campaignId, deadline: userStates.deadline
    }).from(userStates).innerJoin(users, eq(users.id, userStates.userId))
      .where(and(eq(userStates.state, 'pending'), gt(userStates.deadline, now.getTime()), lte(userStates.deadline, now.getTime() + horizonMs), gt(userStates.userId, cursor ?? '')))
      .orderBy(asc(userStates.userId)).limit(limit)
    // A pending user has a deadline, and one from a campaign (the where clause holds them to it).
    return rows.map((row) => ({ ...row, campaignId: row.campaignId as string, deadline: new Date(row.deadline as number) }))
  }

  async claim (userId: string, campaignId: string, offsetDays: number, at: Date): Promise<boolean> {
    const claimed = await this.access.current.insert(remindersSent).values({ userId, campaignId, offsetDays, sentAt: at.getTime() }).onConflictDoNothing()
    return claimed.rowCount === 1
  }
}
