/**
 * The admin dashboard's read model: how far the rollout has come, counted by the database (grouped queries),
 * never by loading users. Pure helpers here say what the numbers mean; the store in db/ computes them.
 */
import { USER_STATES, type UserState } from './states.ts'

export type StateCounts = Record<UserState, number>

/** The method kinds the portal itself enrolls; providers may report more (Entra's Authenticator app, email, …). */
export const PORTAL_METHOD_KINDS = ['passkey', 'totp', 'phone'] as const

/**
 * Users holding a method of one kind: in the portal, as the provider reports it, and where it counts (each user
 * once): for a directory user only the directory's methods protect their sign-in (protection.ts).
 */
export interface MethodKindCount {
  kind: string
  portalUsers: number
  providerUsers: number
  countingUsers: number
}

export interface ProviderCount {
  provider: string
  total: number
  byState: StateCounts
}

export interface AttentionUser {
  userId: string
  email: string
  reason: string
  /** Why, as stored catalogue words (stored-words.ts): pages say it in the reader's language; null on older rows. */
  reasonWords: string | null
  /** Enforcement was found switched off by hand and the campaign only flags it: an admin may re-apply it. */
  driftFlagged: boolean
  /** A job failed with an error a person must fix: an admin may retry once it is fixed. */
  failed: boolean
}

/** A user whose enforcement waits to be tried again after a transient provider error: nobody needs to act. */
export interface RetryingUser {
  userId: string
  email: string
  provider: string
  action: 'enforce' | 'relax'
  attempts: number
  nextAttemptAt: Date
  lastError: string
}

export interface StateListRow {
  /** Opaque keyset cursor for the next page. */
  cursor: number
  userId: string
  email: string
  provider: string
  reason: string
  /** Why, as stored catalogue words (stored-words.ts): pages say it in the reader's language; null on older rows. */
  reasonWords: string | null
  deadline: Date | null
}

/** One day's counts by state, as written by the daily snapshot job. */
export interface RolloutSnapshot {
  day: string
  counts: Partial<StateCounts>
}

export interface DashboardStore {
  /** Users per state, plus users no state has been derived for yet. */
  stateCounts(): Promise<{ counts: StateCounts, unassessed: number }>
  methodCounts(): Promise<MethodKindCount[]>
  providerCounts(): Promise<ProviderCount[]>
  /** The first `limit` users needing attention, oldest first. */
  attention(limit: number): Promise<AttentionUser[]>
  /** Users whose current job waits to be retried after a provider error: how many, and the `limit` due first. */
  retrying(limit: number): Promise<{ total: number, first: RetryingUser[] }>
  /** Users in one state, a page at a time (keyset on an opaque cursor). */
  usersInState(state: UserState, after: number | null, limit: number): Promise<StateListRow[]>
  /** Daily snapshots from `fromDay` (inclusive), oldest first. */
  snapshots(fromDay: string): Promise<RolloutSnapshot[]>
  /** Records today's counts by state once (the first call of a UTC day wins); true when it wrote one. */
  takeSnapshot(now: Date): Promise<boolean>
  /** Daily snapshots of each wave of a campaign in waves (written with takeSnapshot), by wave, oldest first. */
  waveSnapshots(campaignId: string, fromDay: string): Promise<Map<number, RolloutSnapshot[]>>
}

export function emptyStateCounts (): StateCounts {
  return Object.fromEntries(USER_STATES.map((state) => [state, 0])) as StateCounts
}

/** "Not yet enrolled", as the burn-down chart counts it: still in their grace period or past it without a method. */
export function notYetEnrolled (counts: Partial<StateCounts>): number {
  return (counts.pending ?? 0) + (counts.overdue ?? 0)
}

/** The UTC calendar day of an instant, as 'YYYY-MM-DD' (snapshots and chart days are UTC days). */
export function utcDay (at: Date): string {
  return at.toISOString().slice(0, 10)
}

/**
 * The burn-down series: one point per stored snapshot, then today's live counts as the last point (replacing
 * today's snapshot, which may be hours old).
 */
export function burndownSeries (snapshots: RolloutSnapshot[], live: Partial<StateCounts>, now: Date): Array<{ day: string, value: number }> {
  const today = utcDay(now)
  const points = snapshots.filter((s) => s.day < today).map((s) => ({ day: s.day, value: notYetEnrolled(s.counts) }))
  points.push({ day: today, value: notYetEnrolled(live) })
  return points
}

/** Each campaign's deadline, and its earlier deadline for privileged users, as markers on the burn-down chart. */
export function deadlineMarkers (campaigns: Array<{ name: string, deadline: Date, privilegedDeadline: Date | null }>): Array<{ day: string, kind: 'deadline' | 'privileged', label: string }> {
  return campaigns.flatMap((c) => [
    { day: utcDay(c.deadline), kind: 'deadline' as const, label: `${c.name}: deadline` },
    ...(c.privilegedDeadline === null ? [] : [{ day: utcDay(c.privilegedDeadline), kind: 'privileged' as const, label: `${c.name}: privileged users' deadline` }])
  ])
}
