/**
 * Effective deadlines, computed in one pure function (DESIGN.md "Deadlines and states"): campaign rule →
 * new-user window → SMS sunset grace → approved extensions. Never typed twice, never stored as the source of truth.
 */
import type { Words } from './i18n.ts'
import { dropsAtSmsSunset, type MethodPolicy } from './methods.ts'
import { pauseShiftMs, waveCount, waveOf, waveSchedule, type PauseSpan, type WavePlan, type WaveStart } from './waves.ts'

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
  /** Users who drop below the policy at the SMS sunset get a new deadline this many days after it (absent: 30). */
  smsSunsetGraceDays?: number
  /** Waves (waves.ts): absent or null, one wave on `deadline`. */
  waves?: WavePlan | null
  waveStarts?: WaveStart[]
  /** Breaker pauses: completed ones move the deadlines of users not yet flipped (waves.ts pauseShiftMs). */
  pauses?: PauseSpan[]
}

export interface DeadlineSubject {
  firstSeenAt: Date
  /** When the directory created the account (Entra createdDateTime, IAM CreateDate); null or absent when unknown. */
  directoryCreatedAt?: Date | null
  /** The directory the account comes from, to name it in the explanation. */
  provider?: string
  privileged: boolean
  /** The method kinds that count (protection.ts `countingMethods`) and when enforcement began: for the SMS sunset. */
  methodKinds?: readonly string[]
  enforcedAt?: Date | null
  /** Who the user is and their groups: which wave of a campaign in waves they belong to (waves.ts waveOf). */
  userId?: string
  groups?: string[]
}


/**
 * When the account joined, for the new-user window: the directory's own creation date where there is one (an
 * account that existed long before the directory was connected is no newcomer, however late the portal first
 * saw it), else the day the portal first saw it. `since` says which (domain.joined_since: "when the account was
 * created in Entra on 20 December 2026"), as the helpdesk page and the home page show it.
 */
export function joinedAt (user: DeadlineSubject): { at: Date, since: Words } {
  if (user.directoryCreatedAt != null) {
    return { at: user.directoryCreatedAt, since: { key: 'domain.joined_since', values: { source: 'directory', directory: user.provider ?? '', at: user.directoryCreatedAt } } }
  }
  return { at: user.firstSeenAt, since: { key: 'domain.joined_since', values: { source: 'portal', directory: '', at: user.firstSeenAt } } }
}

export interface Extension {
  campaignId: string
  days: number
}

export interface DeadlineStep {
  rule: 'campaign_deadline' | 'wave_deadline' | 'privileged_deadline' | 'new_user_window' | 'campaign_paused' | 'sms_sunset' | 'extension'
  at: Date
  /** How this step moved the date, in words (locales/<language>/domain.json): `it.t(step.note.key, step.note.values)`. */
  note: Words
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
  newUserWindow: { days: number, since: Words } | null
  /** Set when the SMS sunset decided the date: text messages stopped counting then, and this grace followed. */
  smsSunset: { at: Date, graceDays: number } | null
  /**
   * The user's wave when the campaign runs in waves (null: it does not). `counting` false: the wave waits for the
   * previous one, and nobody in it is flipped; the date shown is the earliest its deadline can be.
   */
  wave: { number: number, of: number, counting: boolean, startedAt: Date | null } | null
}

/**
 * One campaign's deadline for one user. `now` (the engine passes it) lets the SMS sunset's new deadline apply once
 * the sunset has come; without it, the date is the campaign's rule alone.
 */
export function campaignDeadline (campaign: CampaignRule & Partial<MethodPolicy>, user: DeadlineSubject, extensions: Extension[], now?: Date): CampaignDeadline {
  const steps: DeadlineStep[] = []
  let deadline = campaign.deadline
  let privilegedDeadline = campaign.privilegedDeadline
  const wave = waveFor(campaign, user)
  if (wave === null) {
    steps.push({ rule: 'campaign_deadline', at: deadline, note: { key: 'domain.step_campaign', values: { campaign: campaign.name } } })
  } else {
    // A later wave keeps the privileged users' lead: their deadline comes as long before the wave's as the campaign says.
    if (privilegedDeadline !== null) privilegedDeadline = new Date(wave.timing.base.getTime() - (campaign.deadline.getTime() - privilegedDeadline.getTime()))
    deadline = wave.timing.base
    const state = wave.number === 1 ? 'pilot' : wave.timing.counting ? 'counting' : 'waiting'
    steps.push({ rule: 'wave_deadline', at: deadline, note: { key: 'domain.step_wave', values: { campaign: campaign.name, state, wave: wave.number, of: wave.of } } })
  }
  if (user.privileged && privilegedDeadline !== null && privilegedDeadline < deadline) {
    deadline = privilegedDeadline
    steps.push({ rule: 'privileged_deadline', at: deadline, note: { key: 'domain.step_privileged' } })
  }
  const joined = joinedAt(user)
  let newUserWindow: CampaignDeadline['newUserWindow'] = null
  if (joined.at > campaign.startsAt) {
    const window = new Date(joined.at.getTime() + campaign.newUserWindowDays * DAY_MS)
    if (window > deadline) {
      deadline = window
      steps.push({ rule: 'new_user_window', at: deadline, note: { key: 'domain.step_new_user', values: { ...joined.since.values, days: campaign.newUserWindowDays } } })
      newUserWindow = { days: campaign.newUserWindowDays, since: joined.since }
    }
  }
  // Pauses of the campaign (its breaker) give back their length to everyone not flipped when they began.
  const paused = pauseShiftMs(campaign, wave?.timing ?? { startedAt: campaign.startsAt, counting: true }, user.enforcedAt)
  if (paused > 0) {
    deadline = new Date(deadline.getTime() + paused)
    steps.push({ rule: 'campaign_paused', at: deadline, note: { key: 'domain.step_paused', values: describeLength(paused) } })
  }
  const sunset = now === undefined ? null : smsSunsetGrace(campaign, user, deadline, now)
  if (sunset !== null) {
    deadline = sunset.deadline
    steps.push({ rule: 'sms_sunset', at: deadline, note: { key: 'domain.step_sms_sunset', values: { at: sunset.at, graceDays: sunset.graceDays } } })
  }
  // Extensions only move the date later, and never past the campaign's budget, however many are approved.
  const requested = extensions.filter((e) => e.campaignId === campaign.id).reduce((sum, e) => sum + Math.max(0, e.days), 0)
  const used = Math.min(requested, campaign.maxExtensionDays)
  if (used > 0) {
    deadline = new Date(deadline.getTime() + used * DAY_MS)
    steps.push({ rule: 'extension', at: deadline, note: { key: 'domain.step_extension', values: { days: used } } })
  }
  return {
    campaignId: campaign.id, campaignName: campaign.name, deadline, steps, extensionDaysUsed: used, extensionDaysLeft: campaign.maxExtensionDays - used, newUserWindow,
    smsSunset: sunset === null ? null : { at: sunset.at, graceDays: sunset.graceDays },
    wave: wave === null ? null : { number: wave.number, of: wave.of, counting: wave.timing.counting, startedAt: wave.timing.startedAt }
  }
}

/** The user's wave and its timing, when the campaign runs in waves and we know who the user is. */
function waveFor (campaign: CampaignRule, user: DeadlineSubject): { number: number, of: number, timing: ReturnType<typeof waveSchedule>[number] } | null {
  if (campaign.waves == null || user.userId === undefined) return null
  const number = waveOf(campaign.id, campaign.waves, { userId: user.userId, groups: user.groups })
  return { number, of: waveCount(campaign.waves), timing: waveSchedule(campaign)[number - 1] }
}

/** A pause's length for domain.step_paused: whole hours up to two days, else whole days. */
function describeLength (ms: number): { unit: 'hours' | 'days', count: number } {
  const hours = Math.round(ms / 3_600_000)
  if (hours < 48) return { unit: 'hours', count: hours }
  return { unit: 'days', count: Math.round(ms / DAY_MS) }
}

export const DEFAULT_SMS_SUNSET_GRACE_DAYS = 30

/**
 * The SMS sunset's new deadline (issue #17 item 5): once the sunset has come, a user who met the policy only thanks
 * to text messages gets `graceDays` from the sunset date (never an immediate flip), unless their deadline is later
 * anyway. Someone enforced before the sunset stays enforced: MFA is already mandatory, so no grace is handed back.
 */
export function smsSunsetGrace (campaign: CampaignRule & Partial<MethodPolicy>, user: DeadlineSubject, deadline: Date, now: Date): { deadline: Date, at: Date, graceDays: number } | null {
  const at = campaign.smsSunsetAt
  if (at == null || now < at || user.methodKinds === undefined) return null
  if (user.enforcedAt != null && user.enforcedAt < at) return null
  const policy: MethodPolicy = { smsPolicy: campaign.smsPolicy ?? 'counts', privilegedMethods: campaign.privilegedMethods ?? 'phishing_resistant', ...campaign }
  if (!dropsAtSmsSunset(user.privileged, user.methodKinds, policy)) return null
  const graceDays = campaign.smsSunsetGraceDays ?? DEFAULT_SMS_SUNSET_GRACE_DAYS
  const graceEnds = new Date(at.getTime() + graceDays * DAY_MS)
  return graceEnds > deadline ? { deadline: graceEnds, at, graceDays } : null
}

/** The user's effective deadline: the earliest over every campaign that targets them (null: none does). */
export function effectiveDeadline (campaigns: Array<CampaignRule & Partial<MethodPolicy>>, user: DeadlineSubject, extensions: Extension[], now?: Date): CampaignDeadline | null {
  let earliest: CampaignDeadline | null = null
  for (const campaign of campaigns) {
    const candidate = campaignDeadline(campaign, user, extensions, now)
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
