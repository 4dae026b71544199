/**
 * Rollouts in waves (issue #17 item 1): a pilot (a group, or a stable share of users chosen by hashing their id),
 * then further waves, each with its deadline a number of days after the previous wave's. A wave after the pilot
 * only starts counting once the previous one is done and healthy (rollout-guard.ts decides that), or when an admin
 * starts it by hand. Pure: who is in which wave, and when each wave's deadline falls.
 */
import { createHash } from 'node:crypto'
import type { Words } from './i18n.ts'

const DAY_MS = 86_400_000
/** Shares are cut on 10 000 buckets, so a 0.5% step is still exact. */
const BUCKETS = 10_000
export const MAX_WAVES = 10

export type PilotSelector = { kind: 'group', group: string } | { kind: 'share', percent: number }

/** How a campaign is split: the pilot, then one wave per offset (days after the previous wave's deadline). */
export interface WavePlan {
  pilot: PilotSelector
  offsetsDays: number[]
}

/** A wave after the pilot that started counting: by the engine (by null) or by an admin. */
export interface WaveStart {
  wave: number
  at: Date
  by: string | null
}

/** A pause of the campaign (breaker): completed ones (resumedAt set) move deadlines of users not yet flipped. */
export interface PauseSpan {
  pausedAt: Date
  resumedAt: Date | null
}

/** What the schedule needs from a campaign. */
export interface WaveRule {
  id: string
  startsAt: Date
  deadline: Date
  waves?: WavePlan | null
  waveStarts?: WaveStart[]
  pauses?: PauseSpan[]
}

export interface WaveTiming {
  /** 1 is the pilot. */
  wave: number
  /** When its deadline started counting (the pilot: the campaign's start); null while it waits for the previous wave. */
  startedAt: Date | null
  /** Its deadline started counting: its users may be flipped once it passes. */
  counting: boolean
  /** The wave's deadline before pauses that came after it started. */
  base: Date
  /** The wave's deadline with every completed pause since it started (for a waiting wave: the earliest it can be). */
  deadline: Date
}

export function waveCount (plan: WavePlan | null | undefined): number {
  return plan == null ? 1 : 1 + plan.offsetsDays.length
}

/** A stable bucket in [0, 10 000) for a user in a campaign: the same on every run, different per campaign. */
export function waveBucket (campaignId: string, userId: string): number {
  return createHash('sha256').update(`${campaignId}\u001f${userId}`).digest().readUInt32BE(0) % BUCKETS
}

/**
 * The user's wave: the pilot when they are in the pilot group (or their bucket falls in the pilot's share); the
 * others spread evenly over the later waves by the same bucket.
 */
export function waveOf (campaignId: string, plan: WavePlan, user: { userId: string, groups?: string[] }): number {
  const later = plan.offsetsDays.length
  const bucket = waveBucket(campaignId, user.userId)
  if (plan.pilot.kind === 'group') {
    if ((user.groups ?? []).includes(plan.pilot.group) || later === 0) return 1
    return 2 + Math.floor(bucket * later / BUCKETS)
  }
  const cut = Math.round(plan.pilot.percent * BUCKETS / 100)
  if (bucket < cut || later === 0) return 1
  return 2 + Math.floor((bucket - cut) * later / (BUCKETS - cut))
}

function completed (pauses: PauseSpan[] | undefined): Array<{ from: number, length: number }> {
  return (pauses ?? []).filter((p) => p.resumedAt !== null).map((p) => ({ from: p.pausedAt.getTime(), length: p.resumedAt!.getTime() - p.pausedAt.getTime() }))
}

/** Total length of completed pauses that began in [from, until). */
function pausedBetween (pauses: Array<{ from: number, length: number }>, from: number, until = Number.POSITIVE_INFINITY): number {
  return pauses.reduce((sum, p) => p.from >= from && p.from < until ? sum + p.length : sum, 0)
}

/**
 * Every wave's timing. The pilot's deadline is the campaign's. A started wave's deadline is its offset after the
 * later of its start and the previous wave's deadline as it stood then (so finishing early never brings a date
 * forward); a waiting wave shows the earliest its deadline can be. Completed pauses move a wave's deadline when
 * they began after it started; pauses before that already delayed its start.
 */
export function waveSchedule (rule: WaveRule): WaveTiming[] {
  const pauses = completed(rule.pauses)
  const start = rule.startsAt.getTime()
  const first = rule.deadline.getTime()
  const timings: WaveTiming[] = [{ wave: 1, startedAt: rule.startsAt, counting: true, base: rule.deadline, deadline: new Date(first + pausedBetween(pauses, start)) }]
  const plan = rule.waves
  if (plan == null) return timings
  plan.offsetsDays.forEach((offset, i) => {
    const wave = i + 2
    const previous = timings[timings.length - 1]
    const started = rule.waveStarts?.find((s) => s.wave === wave)
    if (started === undefined || previous.startedAt === null) {
      const base = new Date(previous.deadline.getTime() + offset * DAY_MS)
      timings.push({ wave, startedAt: null, counting: false, base, deadline: base })
      return
    }
    const at = started.at.getTime()
    const previousThen = previous.base.getTime() + pausedBetween(pauses, previous.startedAt.getTime(), at)
    const base = Math.max(at, previousThen) + offset * DAY_MS
    timings.push({ wave, startedAt: started.at, counting: true, base: new Date(base), deadline: new Date(base + pausedBetween(pauses, at)) })
  })
  return timings
}

/**
 * How far completed pauses move one user's deadline: every pause since their wave started, except those that began
 * after the user was already flipped (their enforcement stands, and so does the date it came from).
 */
export function pauseShiftMs (rule: Pick<WaveRule, 'pauses'>, wave: Pick<WaveTiming, 'startedAt' | 'counting'>, enforcedAt: Date | null | undefined): number {
  if (!wave.counting || wave.startedAt === null) return 0
  const from = wave.startedAt.getTime()
  return completed(rule.pauses).reduce((sum, p) => p.from >= from && !(enforcedAt != null && enforcedAt.getTime() <= p.from) ? sum + p.length : sum, 0)
}

/**
 * Field-by-field problems with a wave plan: the catalogue's words (`campaign-form.*`) for the form, and the same in
 * English for the API's message.
 */
export function waveProblems (plan: WavePlan | null | undefined): Record<string, Words & { english: string }> {
  if (plan == null) return {}
  const fields: Record<string, Words & { english: string }> = {}
  if (plan.pilot.kind === 'group' && plan.pilot.group.trim() === '') fields.wavePilot = { key: 'campaign-form.wave_pilot_group', english: 'Name the group that forms the pilot.' }
  if (plan.pilot.kind === 'share' && (!Number.isFinite(plan.pilot.percent) || plan.pilot.percent < 0.5 || plan.pilot.percent > 90 || Math.round(plan.pilot.percent * 2) !== plan.pilot.percent * 2)) {
    fields.wavePilot = { key: 'campaign-form.wave_pilot_share', english: 'The pilot\'s share is a percentage from 0.5 to 90 (in steps of 0.5).' }
  }
  if (plan.offsetsDays.length === 0) fields.waveOffsets = { key: 'campaign-form.wave_offsets_missing', english: 'Give at least one wave after the pilot: its deadline in days after the pilot\'s.' }
  else if (plan.offsetsDays.length > MAX_WAVES - 1) fields.waveOffsets = { key: 'campaign-form.wave_offsets_too_many', values: { max: MAX_WAVES - 1 }, english: `At most ${MAX_WAVES - 1} waves after the pilot.` }
  else if (plan.offsetsDays.some((d) => !Number.isInteger(d) || d < 1 || d > 365)) fields.waveOffsets = { key: 'campaign-form.wave_offsets_range', english: 'Each wave\'s deadline is a whole number of days (1 to 365) after the previous wave\'s.' }
  return fields
}

/** The plan in words, for the campaign page and the audit log. */
export function describeWavePlan (plan: WavePlan | null | undefined): string {
  if (plan == null) return 'One wave: everyone on the campaign\'s deadline.'
  const pilot = plan.pilot.kind === 'group' ? `the group "${plan.pilot.group}"` : `${plan.pilot.percent}% of users, chosen by their id`
  return `Pilot: ${pilot}; then ${plan.offsetsDays.length} wave${plan.offsetsDays.length === 1 ? '' : 's'}, ${plan.offsetsDays.map((d) => `${d} day${d === 1 ? '' : 's'}`).join(', ')} after the previous one.`
}
