/**
 * Around every sweep: the breaker (breaker.ts) pauses a campaign whose rolling figures say people are being locked
 * out, and the waves (waves.ts) move on when the previous wave is done and healthy. Admins resume a paused campaign
 * and may start a wave by hand; both are audited.
 */
import type { AuditLog } from './audit.ts'
import { BREAKER_WINDOW_MS, breakerVerdict, describeCounts, describeReading, readBreaker, SIGNAL_NAMES, type BreakerCounts, type BreakerReading, type BreakerSignal, type BreakerThresholds } from './breaker.ts'
import type { Clock } from './clock.ts'
import type { CampaignDeadline } from './deadlines.ts'
import type { Campaign, SweepGuard } from './engine.ts'
import { DomainError } from './errors.ts'
import { words, type Notifier } from './notifications.ts'
import type { DerivedState, UserState } from './states.ts'
import type { Actor, User } from './users.ts'
import { waveSchedule, type WaveTiming } from './waves.ts'

/** A pause as stored: never rewritten, resuming fills in the resume fields. */
export interface CampaignPause {
  id: string
  campaignId: string
  pausedAt: Date
  signal: BreakerSignal
  figures: PauseFigures
  resumedAt: Date | null
  resumedBy: string | null
  resumeReason: string | null
}

/** The window's figures when the breaker tripped, as the dashboard and the e-mail show them. */
export interface PauseFigures {
  counts: BreakerCounts
  since: string
  until: string
  value: number
  threshold: number
  thresholds: BreakerThresholds
}

/** One wave's users as the database counts them. */
export interface WaveProgress {
  wave: number
  byState: Partial<Record<UserState, number>>
  /** Users whose flip is due (deadline passed, enforcement wanted) and not carried out yet. */
  due: number
}

export interface RolloutStore {
  /** Per campaign (by the campaign in each user's state), what happened over [since, until): one grouped query. */
  breakerCounts(since: Date, until: Date): Promise<Map<string, BreakerCounts>>
  /** Opens a pause unless one is open already; the pause, or undefined when the campaign was paused. */
  pause(campaignId: string, at: Date, signal: BreakerSignal, figures: PauseFigures): Promise<CampaignPause | undefined>
  /** Closes the open pause; undefined when there was none (already resumed). */
  resume(campaignId: string, at: Date, by: string | null, reason: string): Promise<CampaignPause | undefined>
  /** Records that a wave started counting; false when it had already. */
  startWave(campaignId: string, wave: number, at: Date, by: string | null): Promise<boolean>
  waveProgress(campaignId: string, now: Date): Promise<WaveProgress[]>
}

export type WaveState = 'scheduled' | 'running' | 'done' | 'paused'

export interface WaveStanding extends WaveTiming {
  state: WaveState
  progress: WaveProgress
  total: number
  /** Pending or overdue: not enrolled yet. */
  notYetEnrolled: number
}

/** The engine's part the guard uses. */
export interface GuardedEngine {
  campaigns(): Promise<Campaign[]>
  /** Re-derives the states of every user whose deadline comes from the campaign. */
  refreshCampaign(campaignId: string): Promise<number>
}

const SETTLED: UserState[] = ['enrolled', 'enforced', 'exempt']

/** The campaign's open pause, if it is paused. */
export function openPause (campaign: Pick<Campaign, 'pauses'>): CampaignPause | null {
  const last = campaign.pauses[campaign.pauses.length - 1]
  return last !== undefined && last.resumedAt === null ? last : null
}

/**
 * Each wave's standing. Done: every user in it is enrolled, enforced or exempt, or its deadline passed and no flip
 * is left to do. A wave waiting for the previous one is scheduled; one counting is paused while the campaign is.
 */
export function waveStandings (campaign: Campaign, progress: WaveProgress[], now: Date): WaveStanding[] {
  const paused = openPause(campaign) !== null
  return waveSchedule(campaign).map((timing) => {
    const p = progress.find((w) => w.wave === timing.wave) ?? { wave: timing.wave, byState: {}, due: 0 }
    const total = Object.values(p.byState).reduce((sum, n) => sum + (n ?? 0), 0)
    const settled = SETTLED.reduce((sum, s) => sum + (p.byState[s] ?? 0), 0)
    const done = timing.counting && (settled === total || (timing.deadline <= now && p.due === 0))
    const state: WaveState = !timing.counting ? 'scheduled' : done ? 'done' : paused ? 'paused' : 'running'
    return { ...timing, state, progress: p, total, notYetEnrolled: (p.byState.pending ?? 0) + (p.byState.overdue ?? 0) }
  })
}

/**
 * Why a user whose deadline passed in an armed campaign is not being flipped, when the breaker or the waves hold
 * them back (null otherwise: the state's own reason stands).
 */
export function heldReason (campaign: Campaign, deadline: Pick<CampaignDeadline, 'deadline' | 'wave'>, derived: DerivedState, now: Date): Pick<DerivedState, 'reason' | 'words'> | null {
  if (campaign.armedAt === null || derived.desiredEnforcement !== null || deadline.deadline > now) return null
  if (derived.state !== 'overdue' && derived.state !== 'enrolled') return null
  const pause = openPause(campaign)
  if (pause !== null) {
    return {
      reason: `Deadline passed; the campaign is paused by its breaker since ${minute(pause.pausedAt)}, so nothing is enforced until an admin resumes it.`,
      words: [{ key: 'reasons.paused', values: { since: pause.pausedAt } }]
    }
  }
  if (deadline.wave !== null && !deadline.wave.counting) {
    return {
      reason: `Deadline passed for the earliest date of wave ${deadline.wave.number}, which waits for the previous wave: nothing is enforced until it starts.`,
      words: [{ key: 'reasons.wave_waiting', values: { wave: deadline.wave.number } }]
    }
  }
  return null
}

export class RolloutGuard implements SweepGuard {
  constructor (
    private readonly store: RolloutStore,
    private readonly engine: GuardedEngine,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly notifier: Pick<Notifier, 'alertAdmins'>,
    private readonly admins: () => Promise<Array<Pick<User, 'email' | 'displayName'>>>,
    private readonly campaignUrl: (campaignId: string) => string
  ) {}

  /** Passes issued since the last sweep count before anything more is flipped: pausing happens before the first await. */
  async beforeSweep (): Promise<void> {
    await Promise.all(await this.tripWhereDue())
  }

  async afterSweep (): Promise<void> {
    const alerts = await this.tripWhereDue()
    await this.advanceWaves()
    await Promise.all(alerts)
  }

  /** Today's readings for one campaign (the dry run, the campaign page): the window ending now. */
  async readings (campaign: Campaign): Promise<{ counts: BreakerCounts, readings: BreakerReading[], since: Date }> {
    const now = this.clock.now()
    const since = new Date(now.getTime() - BREAKER_WINDOW_MS)
    const counts = (await this.store.breakerCounts(since, now)).get(campaign.id) ?? { flipped: 0, failures: 0, passes: 0, resets: 0, notMe: 0 }
    return { counts, readings: readBreaker(counts, campaign.breaker), since }
  }

  /** What the breaker would do on today's figures, in sentences (the dry run). */
  async dryRunLines (campaign: Campaign): Promise<string[]> {
    const pause = openPause(campaign)
    if (pause !== null) {
      return [`Breaker: the campaign is paused since ${minute(pause.pausedAt)} (${SIGNAL_NAMES[pause.signal]} passed its threshold), so the next sweep flips no one. An admin resumes it on the campaign page.`]
    }
    const { counts, readings } = await this.readings(campaign)
    const tripped = readings.find((r) => r.tripped)
    const lines = [`Breaker, last 24 hours: ${describeCounts(counts)}.`]
    if (tripped !== undefined) {
      lines.push(`Breaker: on today's figures it WOULD TRIP after the next sweep: ${describeReading(tripped)}. The campaign would be paused and the admins e-mailed.`)
    } else if (readings.every((r) => !r.sampled)) {
      lines.push(`Breaker: would not trip: fewer than ${campaign.breaker.minFlips} users flipped in the last 24 hours, too few to judge.`)
    } else {
      lines.push(`Breaker: would not trip: ${readings.map(describeReading).join('; ')}.`)
    }
    return lines
  }

  /** Each wave's standing, for the campaign page. */
  async waves (campaign: Campaign): Promise<WaveStanding[]> {
    const now = this.clock.now()
    return waveStandings(campaign, campaign.waves === null ? [] : await this.store.waveProgress(campaign.id, now), now)
  }

  /** Resumes a paused campaign (admins only, with a reason): the users not yet flipped get the pause's length back. */
  async resume (campaignId: string, reason: string, actor: Actor): Promise<CampaignPause> {
    const campaign = await this.find(campaignId)
    const why = reason.trim()
    if (why.length < 3) throw new DomainError('reason_required', 'Say why the campaign can go on: what was found, and what was done about it.', { variant: 'resume' })
    if (openPause(campaign) === null) throw new DomainError('not_paused', 'This campaign is not paused.')
    const resumed = await this.store.resume(campaignId, this.clock.now(), actor.id, why)
    if (resumed === undefined) throw new DomainError('not_paused', 'This campaign is not paused.')
    const pausedMs = resumed.resumedAt!.getTime() - resumed.pausedAt.getTime()
    await this.audit.append({
      action: 'campaign.resumed', actorId: actor.id, actorLabel: actor.label,
      details: { campaignId, name: campaign.name, reason: why, pausedAt: resumed.pausedAt.toISOString(), pausedMinutes: Math.round(pausedMs / 60_000), signal: resumed.signal },
      ip: actor.ip, userAgent: actor.userAgent
    })
    await this.engine.refreshCampaign(campaignId)
    return resumed
  }

  /** Starts the next wave by hand, whatever the previous one's standing (audited). */
  async startWave (campaignId: string, wave: number, actor: Actor): Promise<void> {
    const campaign = await this.find(campaignId)
    const next = waveSchedule(campaign).find((w) => !w.counting)
    if (campaign.waves === null || next === undefined) throw new DomainError('no_wave_to_start', 'Every wave of this campaign has started.')
    if (next.wave !== wave) throw new DomainError('wave_out_of_order', `Wave ${next.wave} is the next to start.`, { next: next.wave })
    if (!await this.store.startWave(campaignId, wave, this.clock.now(), actor.id)) throw new DomainError('no_wave_to_start', `Wave ${wave} has already started.`, { variant: 'started', wave })
    await this.audit.append({ action: 'campaign.wave_started', actorId: actor.id, actorLabel: actor.label, details: { campaignId, name: campaign.name, wave, byHand: true }, ip: actor.ip, userAgent: actor.userAgent })
    await this.engine.refreshCampaign(campaignId)
  }

  private async find (campaignId: string): Promise<Campaign> {
    const campaign = (await this.engine.campaigns()).find((c) => c.id === campaignId)
    if (campaign === undefined) throw new DomainError('campaign_not_found', 'No such campaign.')
    return campaign
  }

  /** Pauses every armed campaign whose rolling figures pass a threshold, at once; each pause audited and e-mailed once. */
  private async tripWhereDue (): Promise<Array<Promise<void>>> {
    const alerts: Array<Promise<void>> = []
    const watched = (await this.engine.campaigns()).filter((c) => c.armedAt !== null && openPause(c) === null)
    if (watched.length === 0) return alerts
    const now = this.clock.now()
    const since = new Date(now.getTime() - BREAKER_WINDOW_MS)
    const counts = await this.store.breakerCounts(since, now)
    for (const campaign of watched) {
      const figures = counts.get(campaign.id)
      const verdict = figures === undefined ? null : breakerVerdict(figures, campaign.breaker)
      if (figures === undefined || verdict === null) continue
      const stored: PauseFigures = { counts: figures, since: since.toISOString(), until: now.toISOString(), value: verdict.value, threshold: verdict.threshold, thresholds: campaign.breaker }
      const pause = await this.store.pause(campaign.id, now, verdict.signal, stored)
      if (pause === undefined) continue
      await this.audit.append({ action: 'campaign.paused', actorLabel: 'engine', details: { campaignId: campaign.id, name: campaign.name, signal: verdict.signal, value: verdict.value, threshold: verdict.threshold, ...figures } })
      await this.engine.refreshCampaign(campaign.id)
      alerts.push(this.alert(campaign, verdict, figures))
    }
    return alerts
  }

  private async alert (campaign: Campaign, verdict: BreakerReading, counts: BreakerCounts): Promise<void> {
    try {
      await this.notifier.alertAdmins(await this.admins(), {
        // Keys and values (locales/*/email.json): each administrator reads it in their own language.
        subject: words('email.breaker_subject', { campaign: campaign.name, signal: verdict.signal }),
        lines: [
          words('email.breaker_paused', { campaign: campaign.name, signal: verdict.signal, value: verdict.value, threshold: verdict.threshold }),
          words('email.breaker_counts', { ...counts }),
          words('email.breaker_no_one'),
          words('email.breaker_resume_moves'),
          words('email.breaker_review', { url: this.campaignUrl(campaign.id) })
        ]
      })
    } catch (err) {
      await this.audit.append({ action: 'notification.failed', actorLabel: 'system', details: { message: 'breaker alert', campaignId: campaign.id, reason: err instanceof Error ? err.message : String(err) } })
    }
  }

  /** Starts the next wave of each campaign in waves whose previous wave is done, unless the campaign is paused. */
  private async advanceWaves (): Promise<void> {
    const now = this.clock.now()
    for (const campaign of await this.engine.campaigns()) {
      if (campaign.waves === null || openPause(campaign) !== null) continue
      const standings = waveStandings(campaign, await this.store.waveProgress(campaign.id, now), now)
      const next = standings.find((w) => !w.counting)
      if (next === undefined || standings[next.wave - 2].state !== 'done') continue
      if (!await this.store.startWave(campaign.id, next.wave, now, null)) continue
      await this.audit.append({ action: 'campaign.wave_started', actorLabel: 'engine', details: { campaignId: campaign.id, name: campaign.name, wave: next.wave, byHand: false } })
      await this.engine.refreshCampaign(campaign.id)
    }
  }
}

function minute (at: Date): string {
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}
