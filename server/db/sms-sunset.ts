import type { PhoneHolder, SmsSunsetStore } from '../domain/sms-sunset.ts'
import type { SqliteAccess } from './sqlite-access.ts'

// The campaign's users (by the deadline the engine last derived) holding a phone in the portal or at their directory.
// Which of them the sunset affects is the domain's rule (methods.ts), applied to the kinds read here.
const HOLDERS = `SELECT u.id AS userId, u.email, u.display_name AS displayName, u.locale, u.time_zone AS timeZone, u.provider, u.privileged, u.provider_methods AS providerMethods,
    (SELECT group_concat(DISTINCT kind) FROM auth_methods WHERE user_id = u.id) AS portalMethods,
    (SELECT count(*) FROM recovery_codes WHERE user_id = u.id AND used_at IS NULL AND voided_at IS NULL) AS recoveryCodes
  FROM user_states s JOIN users u ON u.id = s.user_id
  WHERE s.campaign_id = @campaignId AND s.state NOT IN ('exempt', 'not_targeted') AND u.disabled = 0 AND s.user_id > @cursor
    AND (EXISTS (SELECT 1 FROM auth_methods m WHERE m.user_id = u.id AND m.kind = 'phone')
      OR EXISTS (SELECT 1 FROM json_each(u.provider_methods) j WHERE j.value = 'phone'))
  ORDER BY s.user_id LIMIT @limit`

interface Row {
  userId: string
  email: string
  displayName: string
  locale: string | null
  timeZone: string | null
  provider: string
  privileged: number
  providerMethods: string
  portalMethods: string | null
  recoveryCodes: number
}

export class SqliteSmsSunsetStore implements SmsSunsetStore {
  private readonly holders
  private readonly run
  private readonly insertRun
  private readonly insertReminder

  constructor (private readonly access: SqliteAccess) {
    const { sqlite } = access
    this.holders = sqlite.prepare(HOLDERS)
    this.run = sqlite.prepare('SELECT 1 FROM sms_sunset_runs WHERE campaign_id = ? AND sunset_at = ?').pluck()
    this.insertRun = sqlite.prepare('INSERT INTO sms_sunset_runs (campaign_id, sunset_at, applied_at, users, dropped) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
    this.insertReminder = sqlite.prepare('INSERT INTO sms_sunset_reminders (user_id, campaign_id, sunset_at, offset_days, sent_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
  }

  async phoneHoldersAfter (campaignId: string, cursor: string | null, limit: number): Promise<PhoneHolder[]> {
    return await this.access.run(() => {
      const rows = this.holders.all({ campaignId, cursor: cursor ?? '', limit }) as Row[]
      return rows.map((row) => ({
        userId: row.userId,
        email: row.email,
        displayName: row.displayName,
        locale: row.locale,
        timeZone: row.timeZone,
        provider: row.provider,
        privileged: row.privileged === 1,
        portalMethods: row.portalMethods === null ? [] : row.portalMethods.split(','),
        providerMethods: JSON.parse(row.providerMethods) as string[],
        recoveryCodes: row.recoveryCodes
      }))
    })
  }

  async hasRun (campaignId: string, sunsetAt: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.run.get(campaignId, sunsetAt.getTime()) !== undefined
    })
  }

  async recordRun (campaignId: string, sunsetAt: Date, at: Date, users: number, dropped: number): Promise<boolean> {
    return await this.access.run(() => {
      return this.insertRun.run(campaignId, sunsetAt.getTime(), at.getTime(), users, dropped).changes === 1
    })
  }

  async claimReminder (userId: string, campaignId: string, sunsetAt: Date, offsetDays: number, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.insertReminder.run(userId, campaignId, sunsetAt.getTime(), offsetDays, at.getTime()).changes === 1
    })
  }
}
