/**
 * Effective deadlines, computed in one pure function (DESIGN.md "Deadlines and states"): campaign rule →
 * new-user window → approved extensions. Never typed twice, never stored as the source of truth.
 */

const DAY_MS = 24 * 3_600_000

export interface CampaignRule {
  id: string
  name: string
  /** When the campaign started; accounts created (or, failing that, first seen) after it get the new-user window. */
  startsAt: Date
  deadline: Date
  /** A shorter deadline for privileged users (null: same as everyone). */
  privilegedDeadline: Date | null
  newUserWindowDays: number
  maxExtensionDays: number
}

export interface DeadlineSubject {
  firstSeenAt: Date
  /** When the directory created the account (Entra createdDateTime, IAM CreateDate); null or absent when unknown. */
  directoryCreatedAt?: Date | null
  /** The directory the account comes from, to name it in the explanation. */
  provider?: string
  privileged: boolean
}

const DIRECTORY_NAMES: Readonly<Record<string, string>> = { entra: 'Entra', aws: 'AWS IAM' }

/**
 * When the account joined, for the new-user window: the directory's own creation date where there is one (an
 * account that existed long before the directory was connected is no newcomer, however late the portal first
 * saw it), else the day the portal first saw it. `since` says which, in the words the helpdesk page shows.
 */
export function joinedAt (user: DeadlineSubject): { at: Date, since: string } {
  const day = (at: Date): string => at.toISOString().slice(0, 10)
  if (user.directoryCreatedAt != null) {
    const directory = DIRECTORY_NAMES[user.provider ?? ''] ?? 'the directory'
    return { at: user.directoryCreatedAt, since: `when the account was created in ${directory} on ${day(user.directoryCreatedAt)}` }
  }
  return { at: user.firstSeenAt, since: `when the account was first seen by the portal on ${day(user.firstSeenAt)}` }
}

export interface Extension {
  campaignId: string
  days: number
}

export interface DeadlineStep {
  rule: 'campaign_deadline' | 'privileged_deadline' | 'new_user_window' | 'extension'
  at: Date
  note: string
}

export interface CampaignDeadline {
  campaignId: string
  campaignName: string
  deadline: Date
  /** How the date came about, in order, for the helpdesk's "how was this derived". */
  steps: DeadlineStep[]
  extensionDaysUsed: number
  extensionDaysLeft: number
  /** Set when the new-user window decided the date: its length, and from when it counts, in words. */
  newUserWindow: { days: number, since: string } | null
}

/** One campaign's deadline for one user. */
export function campaignDeadline (campaign: CampaignRule, user: DeadlineSubject, extensions: Extension[]): CampaignDeadline {
  const steps: DeadlineStep[] = []
  let deadline = campaign.deadline
  steps.push({ rule: 'campaign_deadline', at: deadline, note: `${campaign.name}: deadline for everyone` })
  if (user.privileged && campaign.privilegedDeadline !== null && campaign.privilegedDeadline < deadline) {
    deadline = campaign.privilegedDeadline
    steps.push({ rule: 'privileged_deadline', at: deadline, note: 'privileged accounts have an earlier deadline' })
  }
  const joined = joinedAt(user)
  let newUserWindow: CampaignDeadline['newUserWindow'] = null
  if (joined.at > campaign.startsAt) {
    const window = new Date(joined.at.getTime() + campaign.newUserWindowDays * DAY_MS)
    if (window > deadline) {
      deadline = window
      steps.push({ rule: 'new_user_window', at: deadline, note: `joined after the campaign started: ${campaign.newUserWindowDays} days from ${joined.since}` })
      newUserWindow = { days: campaign.newUserWindowDays, since: joined.since }
    }
  }
  // Extensions only move the date later, and never past the campaign's budget, however many are approved.
  const requested = extensions.filter((e) => e.campaignId === campaign.id).reduce((sum, e) => sum + Math.max(0, e.days), 0)
  const used = Math.min(requested, campaign.maxExtensionDays)
  if (used > 0) {
    deadline = new Date(deadline.getTime() + used * DAY_MS)
    steps.push({ rule: 'extension', at: deadline, note: `extended by ${used} day${used === 1 ? '' : 's'}` })
  }
  return { campaignId: campaign.id, campaignName: campaign.name, deadline, steps, extensionDaysUsed: used, extensionDaysLeft: campaign.maxExtensionDays - used, newUserWindow }
}

/** The user's effective deadline: the earliest over every campaign that targets them (null: none does). */
export function effectiveDeadline (campaigns: CampaignRule[], user: DeadlineSubject, extensions: Extension[]): CampaignDeadline | null {
  let earliest: CampaignDeadline | null = null
  for (const campaign of campaigns) {
    const candidate = campaignDeadline(campaign, user, extensions)
    if (earliest === null || candidate.deadline < earliest.deadline) earliest = candidate
  }
  return earliest
}

/** Whole days left (rounded up), negative once passed; for "12 days left". */
export function daysLeft (deadline: Date, now: Date): number {
  return Math.ceil((deadline.getTime() - now.getTime()) / DAY_MS)
}

/** When a campaign's soft-block stage begins for a deadline (null: the campaign has none). */
export function softBlockStart (deadline: Date, softBlockDays: number | null): Date | null {
  return softBlockDays === null || softBlockDays <= 0 ? null : new Date(deadline.getTime() - softBlockDays * DAY_MS)
}
