import { DEFAULT_REMINDER_OFFSETS, type CampaignInput } from '../../server/domain/campaigns.ts'

export const DAY = 24 * 3_600_000

/**
 * A valid campaign for tests: everyone, started 60 days before `now`, deadline 10 days after it, default policies.
 * Tests name only the fields their behaviour depends on.
 */
export function campaignInput (now: Date | number, fields: Partial<CampaignInput> = {}): CampaignInput {
  const at = typeof now === 'number' ? now : now.getTime()
  return {
    name: 'Everyone',
    targetKind: 'all',
    targetValue: null,
    startsAt: new Date(at - 60 * DAY),
    deadline: new Date(at + 10 * DAY),
    privilegedDeadline: null,
    newUserWindowDays: 14,
    reminderOffsets: DEFAULT_REMINDER_OFFSETS,
    maxExtensionDays: 30,
    smsPolicy: 'counts',
    privilegedMethods: 'phishing_resistant',
    softBlockDays: null,
    driftPolicy: 'reapply',
    awsPolicyVariant: 'console_and_api',
    ...fields
  }
}
