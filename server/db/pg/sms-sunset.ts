import { and, eq, sql } from 'drizzle-orm'
import type { PhoneHolder, SmsSunsetStore } from '../../domain/sms-sunset.ts'
import type { PgAccess } from './access.ts'
import { smsSunsetReminders, smsSunsetRuns } from './schema.ts'

interface Row extends Record<string, unknown> {
  userId: string
  email: string
  displayName: string
  locale: string | null
  timeZone: string | null
  provider: string
  privileged: boolean
  providerMethods: string
  portalMethods: string[] | null
  recoveryCodes: number
}

export class PgSmsSunsetStore implements SmsSunsetStore {
  constructor (private readonly access: PgAccess) {}

  /**
   * The campaign's users (by the deadline the engine last derived) holding a phone in the portal or at their
   * directory. Which of them the sunset affects is the domain's rule (methods.ts), applied to the kinds read here.
   */
  async phoneHoldersAfter (campaignId: string, cursor: string | null, limit: number): Promise<PhoneHolder[]> {
    const { rows } = await this.access.current.execute<Row>(sql`SELECT u.id AS "userId", u.email, u.display_name AS "displayName", u.locale, u.time_zone AS "timeZone",
        u.provider, u.privileged, u.provider_methods AS "providerMethods",
        (SELECT array_agg(DISTINCT kind) FROM auth_methods WHERE user_id = u.id) AS "portalMethods",
        (SELECT count(*)::int FROM recovery_codes WHERE user_id = u.id AND used_at IS NULL AND voided_at IS NULL) AS "recoveryCodes"
      FROM user_states s JOIN users u ON u.id = s.user_id
      WHERE s.campaign_id = ${campaignId} AND s.state NOT IN ('exempt', 'not_targeted') AND NOT u.disabled AND s.user_id > ${cursor ?? ''}
        AND (EXISTS (SELECT 1 FROM auth_methods m WHERE m.user_id = u.id AND m.kind = 'phone')
          OR u.provider_methods::jsonb @> '["phone"]')
      ORDER BY s.user_id LIMIT ${limit}`)
    return rows.map((row) => ({
      userId: row.userId,
      email: row.email,
      displayName: row.displayName,
      locale: row.locale,
      timeZone: row.timeZone,
      provider: row.provider,
      privileged: row.privileged,
      portalMethods: row.portalMethods ?? [],
      providerMethods: JSON.parse(row.providerMethods) as string[],
      recoveryCodes: row.recoveryCodes
    }))
  }

  async hasRun (campaignId: string, sunsetAt: Date): Promise<boolean> {
    const [run] = await this.access.current.select({ campaignId: smsSunsetRuns.campaignId }).from(smsSunsetRuns)
      .where(and(eq(smsSunsetRuns.campaignId, campaignId), eq(smsSunsetRuns.sunsetAt, sunsetAt.getTime())))
    return run !== undefined
  }

  async recordRun (campaignId: string, sunsetAt: Date, at: Date, users: number, dropped: number): Promise<boolean> {
    const recorded = await this.access.current.insert(smsSunsetRuns).values({ campaignId, sunsetAt: sunsetAt.getTime(), appliedAt: at.getTime(), users, dropped }).onConflictDoNothing()
    return recorded.rowCount === 1
  }

  async claimReminder (userId: string, campaignId: string, sunsetAt: Date, offsetDays: number, at: Date): Promise<boolean> {
    const claimed = await this.access.current.insert(smsSunsetReminders).values({ userId, campaignId, sunsetAt: sunsetAt.getTime(), offsetDays, sentAt: at.getTime() }).onConflictDoNothing()
    return claimed.rowCount === 1
  }
}
