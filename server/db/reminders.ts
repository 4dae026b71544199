import type { ReminderCandidate, ReminderStore } from '../domain/reminders.ts'
import type { SqliteAccess } from './sqlite-access.ts'

export class SqliteReminderStore implements ReminderStore {
  private readonly pending
  private readonly insert

  constructor (private readonly access: SqliteAccess) {
    const { sqlite } = access
    this.pending = sqlite.prepare(`SELECT s.user_id AS userId, u.email, u.display_name AS displayName, u.locale, u.time_zone AS timeZone, s.campaign_id AS campaignId, s.deadline
      FROM user_states s JOIN users u ON u.id = s.user_id
      WHERE s.state = 'pending' AND s.deadline > @now AND s.deadline <= @until AND s.user_id > @cursor ORDER BY s.user_id LIMIT @limit`)
    this.insert = sqlite.prepare('INSERT INTO reminders_sent (user_id, campaign_id, offset_days, sent_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
  }

  async pendingAfter (cursor: string | null, now: Date, horizonMs: number, limit: number): Promise<ReminderCandidate[]> {
    return await this.access.run(() => {
      const rows = this.pending.all({ cursor: cursor ?? '', now: now.getTime(), until: now.getTime() + horizonMs, limit }) as Array<Omit<ReminderCandidate, 'deadline'> & { deadline: number }>
      return rows.map((row) => ({ ...row, deadline: new Date(row.deadline) }))
    })
  }

  async claim (userId: string, campaignId: string, offsetDays: number, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.insert.run(userId, campaignId, offsetDays, at.getTime()).changes === 1
    })
  }
}
