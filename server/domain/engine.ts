import { randomUUID } from 'node:crypto'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { daysLeft, effectiveDeadline, softBlockStart, type CampaignDeadline, type CampaignRule, type Extension } from './deadlines.ts'
import { explainEmptyDryRun, type CampaignOutlook } from './dry-run.ts'
import { isTransient, LONG_RETRY_SCHEDULE_MS, longRetryDelay, PROCESS_STOPPED, retryTime, saysNotFound } from './enforcement-failures.ts'
import { DomainError } from './errors.ts'
import type { Words } from './i18n.ts'
import { assessMethods, DEFAULT_METHOD_POLICY, holdsQualifyingMethod, type AuthMethod, type MethodPolicy, type MethodsRequired } from './methods.ts'
import { deriveState, type DerivedState, type ExemptionFact, type UserState } from './states.ts'
import { ProviderError, type AwsPolicyVariant, type IdentityProvider, type ProviderSubject } from './provider.ts'
import type { AccessKeyReview } from './access-keys.ts'
import type { BreakerThresholds } from './breaker.ts'
import { heldReason, openPause, type CampaignPause } from './rollout-guard.ts'
import type { WavePlan, WaveStart } from './waves.ts'
import type { Actor } from './users.ts'

export interface Campaign extends CampaignRule, MethodPolicy {
  targetKind: 'all' | 'group' | 'privileged' | 'provider'
  targetValue: string | null
  reminderOffsets: number[]
  /** Days before the hard flip during which the portal insists on enrollment (null: no soft-block stage). */
  softBlockDays: number | null
  /** Enforcement found switched off by hand: put it back, or only flag the user for an admin. */
  driftPolicy: 'reapply' | 'flag'
  /** Which deny-unless-MFA policy its AWS IAM users get (domain/access-keys.ts explains the two). */
  awsPolicyVariant: AwsPolicyVariant
  /** What an admin confirmed about the due AWS users' access keys, or null (arming checks it). */
  accessKeyReview: AccessKeyReview | null
  /** Methods before a user counts as enrolled, and the SMS sunset (methods.ts MethodPolicy, deadlines.ts smsSunsetGrace). */
  methodsRequired: MethodsRequired
  smsSunsetAt: Date | null
  smsAfterSunset: 'weak' | 'excluded'
  smsSunsetGraceDays: number
  armedAt: Date | null
  /** Waves (waves.ts; null: one wave), the waves after the pilot that started, and the breaker (breaker.ts). */
  waves: WavePlan | null
  waveStarts: WaveStart[]
  breaker: BreakerThresholds
  /** Every pause by the breaker, oldest first; the last one is open while the campaign is paused. */
  pauses: CampaignPause[]
}

/** Checks around each sweep (rollout-guard.ts: the breaker and the waves). */
export interface SweepGuard {
  /** Runs its synchronous part (pausing) at once; the promise settles when its e-mails are sent. */
  beforeSweep(): Promise<void>
  afterSweep(): Promise<void>
}

/** What the engine knows about one user when deriving their state. */
export interface UserFacts {
  userId: string
  email: string
  externalId: string | null
  provider: string
  privileged: boolean
  groups: string[]
  disabled: boolean
  /** False when the provider says the user is out of scope by default (an IAM user without a console password). */
  targetable: boolean
  firstSeenAt: Date
  /** When the directory created the account (Entra createdDateTime, IAM CreateDate): starts the new-user window. */
  directoryCreatedAt?: Date | null
  /**
   * The method kinds that count toward enrollment (protection.ts `countingMethods`): for a directory user only those
   * registered at the directory, for a local user the portal's own.
   */
  methodKinds: string[]
  /** The user's own methods at the portal, oldest first (ties by id): what the home page lists, read with the rest. */
  methods: AuthMethod[]
  /** Unused recovery codes (whether they count is the policy's business: protection.ts). */
  recoveryCodes: number
  exemption: ExemptionFact | null
  extensions: Extension[]
  enforcedAt: Date | null
  /** The user's latest job when it is in trouble: failed for good (retryAt null), or waiting to be tried again. */
  trouble: JobTrouble | null
  /** Drift found and, per the campaign's policy, flagged rather than re-applied. */
  driftFlaggedAt: Date | null
}

/** What a user's deadline is derived from: the facts without the exemption and the latest job's trouble. */
export type DeadlineFacts = Omit<UserFacts, 'exemption' | 'trouble'>

/** One drift check: who was found switched off by hand, and how many could not be checked (provider unreadable). */
export interface DriftReport {
  drifted: string[]
  checked: number
  unchecked: number
  /** The first provider error met, in words. */
  firstError: string | null
}

export interface StoredState {
  state: UserState
  deadline: Date | null
  /** Bumped whenever the deadline or the desired action changes; jobs are keyed by it. */
  deadlineVersion: number
  desired: JobAction | null
  campaignId: string | null
  /** When the soft-block stage begins (null: the campaign has none). */
  softBlockAt: Date | null
}

export type JobAction = 'enforce' | 'relax'

export interface JobTrouble {
  action: JobAction
  /** The stored error ("code: message"). */
  error: string
  /** When it is tried again by itself; null: it failed for good and waits for a person. */
  retryAt: Date | null
}

export interface Job {
  id: string
  userId: string
  action: JobAction
  deadlineVersion: number
  attempts: number
  /** Attempts in a row that never finished (the process stopped holding the lease); 0 once the provider answered. */
  unfinished: number
}

export interface PlanItem {
  userId: string
  email: string
  action: JobAction
  deadlineVersion: number
  /** The campaign behind the user's deadline (null once none targets them), so a campaign page can show its own part. */
  campaignId: string | null
  /** Why, in English (the CLI, logs). */
  reason: string
  /** Why, for pages in the reader's language: catalogue keys (`reasons.plan_*`) and values, said one after the other. */
  words: Words[]
}

/** What a user's deadline and the methods that count are worked out from: their facts and the live campaigns. */
export interface DeadlineRead { facts: DeadlineFacts, campaigns: Campaign[] }

/** What the home page says about a user's deadline and methods (EnforcementEngine.deadlineAndPolicy). */
export interface DeadlineAndPolicy { deadline: CampaignDeadline | null, policy: MethodPolicy, methods: AuthMethod[], recoveryCodes: number }

/** Storage for the engine. Scans are batched by user id so memory stays flat however many users there are. */
export interface EngineStore {
  activeCampaigns(): Promise<Campaign[]>
  userIdsAfter(cursor: string | null, limit: number): Promise<string[]>
  facts(userId: string): Promise<UserFacts | undefined>
  /** facts() without the exemption and job lookups, for pages that explain the deadline. */
  deadlineFacts(userId: string): Promise<DeadlineFacts | undefined>
  /** The deadline's facts with the live campaigns (as activeCampaigns), in one read: undefined for no such user. */
  deadlineFactsWithCampaigns(userId: string): Promise<DeadlineRead | undefined>
  state(userId: string): Promise<StoredState | undefined>
  /** Writes the derived state; records a transition when the state changes and bumps the version when the deadline does. */
  saveState(userId: string, derived: DerivedState, deadline: Date | null, campaignId: string | null, softBlockAt: Date | null, now: Date, wave?: number | null): Promise<void>
  /** Users whose deadline comes from the campaign, by user id. */
  campaignUserIdsAfter(campaignId: string, cursor: string | null, limit: number): Promise<string[]>
  /** Users whose desired enforcement is due (enforce with deadline <= now, or relax), streamed from the index in one pass. */
  due(now: Date): AsyncIterable<{ userId: string, email: string, action: JobAction, deadlineVersion: number, campaignId: string | null, state: UserState, deadline: Date | null, retryAt: Date | null }>
  /** One campaign's users whose deadline has passed and who are not enforced yet (whom arming it would flip). Ordered by user id. */
  overdueInAfter(campaignId: string, cursor: string | null, now: Date, limit: number): Promise<Array<{ userId: string, email: string, deadlineVersion: number, state: UserState, deadline: Date | null }>>
  /** Users the portal believes enforced, by user id (drift checks). */
  enforcedAfter(cursor: string | null, limit: number): Promise<string[]>
  /** Users still shown as in their grace period although their deadline has passed (to re-derive). */
  lapsedAfter(cursor: string | null, now: Date, limit: number): Promise<string[]>
  /** Users no state has been derived for yet (imported or created since), by user id. */
  unassessedAfter(cursor: string | null, limit: number): Promise<string[]>
  /** Counts of due users by action and campaign, from the same index ranges as `due` (no row is materialised). */
  dueCounts(now: Date): Promise<Array<{ action: JobAction, campaignId: string | null, count: number }>>
  /**
   * Writes a job for every due user (the rows `due` streams) that has none yet for (user, action, version), in one
   * statement inside the database; returns how many were new.
   */
  enqueueDue(now: Date): Promise<number>
  /** Claims up to `limit` ready jobs (queued and due, or running with an expired lease) for `owner`. */
  claim(owner: string, limit: number, leaseMs: number, now: Date): Promise<Job[]>
  complete(jobId: string, owner: string, now: Date): Promise<boolean>
  retryLater(jobId: string, owner: string, error: string, nextAttemptAt: Date, now: Date): Promise<void>
  failForGood(jobId: string, owner: string, error: string, now: Date): Promise<void>
  /** Ends a running job without acting: it no longer has a reason (status 'superseded'). False when the lease was lost. */
  supersede(jobId: string, owner: string, now: Date): Promise<boolean>
  /** The user no longer exists at their directory: disabled in the portal, and nothing is enforced for them any more. */
  markGoneFromDirectory(userId: string, now: Date): Promise<void>
  /** Brings every job of the provider's users that waits after a transient error forward to `now`; their user ids. */
  retryWaitingNow(provider: string, now: Date): Promise<string[]>
  /** Ends the user's failed jobs (status 'superseded'), so their state is derived afresh; how many there were. */
  supersedeFailed(userId: string, now: Date): Promise<number>
  /** The same for every user whose deadline comes from the campaign; their user ids. */
  supersedeFailedInCampaign(campaignId: string, now: Date): Promise<string[]>
  /** Users needing attention because a job failed for good, by user id (the dashboard's "Retry all"). */
  failedAttentionAfter(cursor: string | null, limit: number): Promise<string[]>
  /** How a campaign's users stand, counted by the database (why a dry run lists no one). */
  campaignOutlook(campaign: Campaign, now: Date): Promise<CampaignOutlook>
  /** Records the provider's enforcement as the portal knows it (null: not enforced). */
  setEnforcedAt(userId: string, at: Date | null): Promise<void>
  /** Flags (or clears) drift that the campaign's policy says to report rather than re-apply. */
  setDriftFlagged(userId: string, at: Date | null): Promise<void>
  /** Runs work atomically (a job's outcome, the user's enforcement record and its audit event commit together). */
  atomically<T>(work: () => Promise<T>): Promise<T>
}

export interface EngineSettings {
  /** Which methods qualify for users no campaign targets (the home page's wording); campaigns carry their own. */
  defaultMethodPolicy: MethodPolicy
  concurrency: number
  maxAttempts: number
  leaseMs: number
  baseBackoffMs: number
  maxBackoffMs: number
  /** After `maxAttempts` fast attempts, a transient failure waits these in turn (the last repeats) instead of giving up. */
  longRetryScheduleMs: readonly number[]
}

export const DEFAULT_ENGINE_SETTINGS: EngineSettings = {
  defaultMethodPolicy: DEFAULT_METHOD_POLICY, concurrency: 4, maxAttempts: 6, leaseMs: 60_000, baseBackoffMs: 1_000, maxBackoffMs: 5 * 60_000, longRetryScheduleMs: LONG_RETRY_SCHEDULE_MS
}

export function targets (campaign: Pick<Campaign, 'targetKind' | 'targetValue'>, user: Pick<UserFacts, 'groups' | 'privileged' | 'provider'>): boolean {
  switch (campaign.targetKind) {
    case 'all': return true
    case 'privileged': return user.privileged
    case 'group': return campaign.targetValue !== null && user.groups.includes(campaign.targetValue)
    case 'provider': return user.provider === campaign.targetValue
  }
}

export interface Standing {
  state: UserState
  deadline: Date | null
  daysLeft: number | null
  /** In the campaign's soft-block stage without a qualifying method: the portal insists on enrollment. */
  softBlocked: boolean
}

/** Where a user stands at `now`, from their stored state (undefined before the engine first assessed them). */
export function standingFrom (stored: StoredState | undefined, now: Date): Standing | undefined {
  if (stored === undefined) return undefined
  return {
    state: stored.state,
    deadline: stored.deadline,
    daysLeft: stored.deadline === null ? null : daysLeft(stored.deadline, now),
    // Only while the grace period still runs without a qualifying method: the portal then insists on enrollment.
    softBlocked: stored.state === 'pending' && stored.softBlockAt !== null && stored.softBlockAt <= now
  }
}

/** The dry run at a glance: complete counts, and the first rows for a page. */
export interface PlanSummary {
  total: number
  enforce: number
  relax: number
  byCampaign: Map<string | null, { enforce: number, relax: number }>
  sample: PlanItem[]
}

export interface SweepReport {
  /** Due users when the sweep planned (each has a job now, new or still running from an earlier sweep). */
  planned: number
  enqueued: number
  completed: number
  retried: number
  /** Fast attempts ran out on a transient error: the job now waits on the long schedule (1 h, 6 h, 24 h, …). */
  waiting: number
  /** Failed for good: the user needs attention. */
  failed: number
  /** Ended without acting because the user no longer exists at the directory. */
  superseded: number
}

/**
 * Grace-period enforcement (DESIGN.md "Enforcement engine"): keep each user's state current, plan from the
 * database, write durable jobs, and run them with leases so a crash or an overlapping sweep never loses or
 * double-applies a flip.
 */
export class EnforcementEngine {
  private readonly owner = `sweep-${randomUUID()}`
  private guard: SweepGuard | undefined

  constructor (
    private readonly store: EngineStore,
    private readonly providerFor: (name: string) => IdentityProvider,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly settings: EngineSettings = DEFAULT_ENGINE_SETTINGS,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    private readonly random: () => number = Math.random
  ) {}

  /** The campaigns in force (not archived). */
  async campaigns (): Promise<Campaign[]> {
    return this.store.activeCampaigns()
  }

  /** Where a user stands, for their own pages: state, deadline and whole days left. */
  async standing (userId: string): Promise<Standing | undefined> {
    return standingFrom(await this.store.state(userId), this.clock.now())
  }

  /** Which methods qualify for users no campaign targets. */
  get defaultMethodPolicy (): MethodPolicy {
    return this.settings.defaultMethodPolicy
  }

  /** The user's effective deadline with how it was derived (campaign rule, new-user window, extensions), or null. */
  async explainDeadline (userId: string, campaigns?: Campaign[]): Promise<CampaignDeadline | null> {
    return (await this.deadlineAndPolicy(userId, campaigns)).deadline
  }

  /**
   * What the home page says about a user's deadline and methods, from one read of the facts and campaigns: the
   * deadline with how it was derived, which methods qualify (those of the campaign that set the deadline, else the
   * portal's default), the user's methods at the portal and how many unused recovery codes they hold.
   */
  async deadlineAndPolicy (userId: string, campaigns?: Campaign[]): Promise<DeadlineAndPolicy> {
    // Unless the caller has the campaigns already, they come with the facts: one read.
    const read = campaigns === undefined
      ? await this.store.deadlineFactsWithCampaigns(userId)
      : await this.store.deadlineFacts(userId).then((facts) => facts === undefined ? undefined : { facts, campaigns })
    return this.deadlineAndPolicyFrom(read)
  }

  /** The same from facts and campaigns read already (the home page's come with its session: SessionRead.signedIn.deadline). */
  deadlineAndPolicyFrom (read: DeadlineRead | undefined): DeadlineAndPolicy {
    if (read === undefined) return { deadline: null, policy: this.settings.defaultMethodPolicy, methods: [], recoveryCodes: 0 }
    const { deadline, campaign } = this.deadlineFor(read.facts, read.campaigns, this.clock.now())
    // The methods and unused recovery codes come with the same read: the home page shows them without asking again.
    return { deadline, policy: campaign ?? this.settings.defaultMethodPolicy, methods: read.facts.methods, recoveryCodes: read.facts.recoveryCodes }
  }

  private deadlineFor (facts: DeadlineFacts, campaigns: Campaign[], now: Date): { deadline: CampaignDeadline | null, campaign: Campaign | undefined } {
    const mine = facts.disabled || !facts.targetable ? [] : campaigns.filter((c) => targets(c, facts))
    // `now`: once a campaign's SMS sunset has come, those who relied on text messages get its grace (deadlines.ts).
    const deadline = effectiveDeadline(mine, facts, facts.extensions, now)
    return { deadline, campaign: deadline === null ? undefined : mine.find((c) => c.id === deadline.campaignId) }
  }

  /** Re-derives one user's state from the facts (after enrollment, extension, exemption, sync, campaign edits). */
  async refreshUser (userId: string, campaigns?: Campaign[]): Promise<UserState | undefined> {
    campaigns ??= await this.store.activeCampaigns()
    const facts = await this.store.facts(userId)
    if (facts === undefined) return undefined
    const now = this.clock.now()
    const { deadline, campaign } = this.deadlineFor(facts, campaigns, now)
    const methods = assessMethods(facts.privileged, facts.methodKinds, campaign ?? this.settings.defaultMethodPolicy, now)
    const derived = deriveState({
      exemption: facts.exemption,
      phishingResistant: methods.phishingResistant,
      deadline: deadline?.deadline ?? null,
      enrolled: methods.enrolled,
      enforced: facts.enforcedAt !== null,
      failed: facts.trouble !== null && facts.trouble.retryAt === null ? { action: facts.trouble.action, lastError: facts.trouble.error } : null,
      retrying: facts.trouble?.retryAt == null ? null : { action: facts.trouble.action, at: facts.trouble.retryAt, lastError: facts.trouble.error },
      driftFlagged: facts.driftFlaggedAt !== null,
      // A paused campaign (breaker), or a wave still waiting for the previous one, flips no one.
      armed: campaign?.armedAt != null && openPause(campaign) === null && deadline?.wave?.counting !== false
    }, now)
    const held = campaign === undefined || deadline === null ? null : heldReason(campaign, deadline, derived, now)
    const softBlockAt = deadline === null || campaign === undefined ? null : softBlockStart(deadline.deadline, campaign.softBlockDays)
    await this.store.saveState(userId, held === null ? derived : { ...derived, ...held }, deadline?.deadline ?? null, deadline?.campaignId ?? null, softBlockAt, now, deadline?.wave?.number ?? null)
    return derived.state
  }

  /** Re-derives the states of every user whose deadline comes from the campaign (paused, resumed, a wave started). */
  async refreshCampaign (campaignId: string, batchSize = 500): Promise<number> {
    const campaigns = await this.store.activeCampaigns()
    let cursor: string | null = null
    let count = 0
    for (;;) {
      const ids = await this.store.campaignUserIdsAfter(campaignId, cursor, batchSize)
      if (ids.length === 0) return count
      for (const id of ids) await this.refreshUser(id, campaigns)
      count += ids.length
      cursor = ids[ids.length - 1]
    }
  }

  /** The breaker and the waves, checked around every sweep (wired once, late: the guard needs the engine too). */
  guardSweepsWith (guard: SweepGuard): void {
    this.guard = guard
  }

  /** Re-derives every user's state, in batches. */
  async refreshAll (batchSize = 500): Promise<number> {
    const campaigns = await this.store.activeCampaigns()
    let cursor: string | null = null
    let count = 0
    for (;;) {
      const ids = await this.store.userIdsAfter(cursor, batchSize)
      if (ids.length === 0) return count
      for (const id of ids) await this.refreshUser(id, campaigns)
      count += ids.length
      cursor = ids[ids.length - 1]
    }
  }

  /**
   * Re-derives the users whose deadline has passed since their state was last derived (an indexed scan), and those
   * never evaluated at all (added since the last campaign change), so the sweep acts on everyone who is due.
   */
  async refreshLapsed (batchSize = 500): Promise<number> {
    const campaigns = await this.store.activeCampaigns()
    const now = this.clock.now()
    let count = 0
    for (const next of [(cursor: string | null) => this.store.lapsedAfter(cursor, now, batchSize), (cursor: string | null) => this.store.unassessedAfter(cursor, batchSize)]) {
      let cursor: string | null = null
      for (;;) {
        const ids = await next(cursor)
        if (ids.length === 0) break
        for (const id of ids) await this.refreshUser(id, campaigns)
        count += ids.length
        cursor = ids[ids.length - 1]
      }
    }
    return count
  }

  /**
   * Drift: re-reads the provider for users the portal believes enforced. Where someone switched enforcement off
   * by hand, it is recorded (audit) and the user's state re-derived: the next sweep re-applies it, or, when the
   * campaign's drift policy says "flag", the user is shown as needing attention and nothing is re-applied.
   */
  async detectDrift (batchSize = 200): Promise<string[]> {
    return (await this.checkDrift(batchSize)).drifted
  }

  /** detectDrift, also counting the users checked and those the provider could not be asked about (issue #13). */
  async checkDrift (batchSize = 200): Promise<DriftReport> {
    const drifted: string[] = []
    const tally = { checked: 0, unchecked: 0, firstError: null as string | null }
    const campaigns = await this.store.activeCampaigns()
    const reached = new Set<string>()
    let cursor: string | null = null
    for (;;) {
      const ids = await this.store.enforcedAfter(cursor, batchSize)
      if (ids.length === 0) return { drifted, ...tally }
      for (const userId of ids) {
        const facts = await this.store.facts(userId)
        if (facts === undefined) continue
        const subject = this.subjectOf(facts, (await this.store.state(userId))?.campaignId ?? null, campaigns)
        let state
        try {
          state = await this.providerFor(facts.provider).enforcementState(subject)
        } catch (err) {
          tally.unchecked++
          tally.firstError ??= describeError(err)
          await this.audit.append({ action: 'enforcement.drift_check_failed', actorLabel: 'engine', subjectUserId: userId, details: { error: describeError(err) } })
          continue
        }
        tally.checked++
        // The provider answers again: whatever waits there after an outage is tried at the next sweep, not hours later.
        if (!reached.has(facts.provider)) {
          reached.add(facts.provider)
          await this.retryWaitingNow(facts.provider)
        }
        if (state === 'enforced') continue
        const campaignId = (await this.store.state(userId))?.campaignId
        const policy = campaigns.find((c) => c.id === campaignId)?.driftPolicy ?? 'reapply'
        await this.store.atomically(async () => {
          await this.store.setEnforcedAt(userId, null)
          if (policy === 'flag') await this.store.setDriftFlagged(userId, this.clock.now())
          await this.audit.append({ action: 'enforcement.drift_detected', actorLabel: 'engine', subjectUserId: userId, details: { provider: facts.provider, found: state, policy } })
        })
        await this.refreshUser(userId, campaigns)
        drifted.push(userId)
      }
      cursor = ids[ids.length - 1]
    }
  }

  /** What the next sweep would do, per user, with reasons, streamed from the index. No side effects: the dry run. */
  async * planItems (): AsyncGenerator<PlanItem> {
    const now = this.clock.now()
    for await (const due of this.store.due(now)) {
      const waiting = due.retryAt !== null && due.retryAt > now ? due.retryAt : null
      const waits = waiting !== null ? ` Waiting for the provider: next try at ${retryTime(waiting)}.` : ''
      const words = waiting !== null ? [planWords(due), { key: 'reasons.plan_waiting', values: { at: waiting } }] : [planWords(due)]
      yield { userId: due.userId, email: due.email, action: due.action, deadlineVersion: due.deadlineVersion, campaignId: due.campaignId, reason: planReason(due) + waits, words }
    }
  }

  /** The whole dry run as a list (tests and small tenants; pages use planSummary, the CLI streams planItems). */
  async plan (): Promise<PlanItem[]> {
    const items: PlanItem[] = []
    for await (const item of this.planItems()) items.push(item)
    return items
  }

  /** The dry run for pages and logs: exact counts from the index, and the first `sampleSize` rows. */
  async planSummary (sampleSize = 500, campaignId?: string): Promise<PlanSummary> {
    const byCampaign = new Map<string | null, { enforce: number, relax: number }>()
    const summary: PlanSummary = { total: 0, enforce: 0, relax: 0, byCampaign, sample: [] }
    for (const row of await this.store.dueCounts(this.clock.now())) {
      if (campaignId !== undefined && row.campaignId !== campaignId) continue
      const entry = byCampaign.get(row.campaignId) ?? { enforce: 0, relax: 0 }
      entry[row.action] += row.count
      byCampaign.set(row.campaignId, entry)
      summary[row.action] += row.count
      summary.total += row.count
    }
    if (sampleSize > 0 && summary.total > 0) {
      for await (const item of this.planItems()) {
        if (campaignId !== undefined && item.campaignId !== campaignId) continue
        summary.sample.push(item)
        if (summary.sample.length >= sampleSize) break
      }
    }
    return summary
  }

  /**
   * The dry run of arming a disarmed campaign: its users whose deadline has passed and who are not enforced yet,
   * each of whom the first sweep after arming would flip. Admins review it before the first real flip.
   */
  async previewArming (campaignId: string, batchSize = 1000): Promise<PlanItem[]> {
    const items: PlanItem[] = []
    for await (const item of this.previewArmingItems(campaignId, batchSize)) items.push(item)
    return items
  }

  private async * previewArmingItems (campaignId: string, batchSize = 1000): AsyncGenerator<PlanItem> {
    const now = this.clock.now()
    let cursor: string | null = null
    for (;;) {
      const batch = await this.store.overdueInAfter(campaignId, cursor, now, batchSize)
      if (batch.length === 0) return
      for (const due of batch) {
        yield { userId: due.userId, email: due.email, action: 'enforce', deadlineVersion: due.deadlineVersion, campaignId, reason: planReason({ ...due, action: 'enforce' }), words: [planWords({ ...due, action: 'enforce' })] }
      }
      cursor = batch[batch.length - 1].userId
    }
  }

  /**
   * One campaign's dry run, row by row, as the campaign page and `sweep --dry-run --campaign` both show it: before
   * arming, what arming would do; once armed, the campaign's part of the next sweep.
   */
  async * campaignPlanItems (campaign: Pick<Campaign, 'id' | 'armedAt'>): AsyncGenerator<PlanItem> {
    if (campaign.armedAt === null) {
      yield * this.previewArmingItems(campaign.id)
      return
    }
    for await (const item of this.planItems()) if (item.campaignId === campaign.id) yield item
  }

  /** The same dry run for a page: complete counts and the first `sampleSize` rows. */
  async campaignPlan (campaign: Pick<Campaign, 'id' | 'armedAt'>, sampleSize = 500): Promise<PlanSummary> {
    if (campaign.armedAt !== null) return this.planSummary(sampleSize, campaign.id)
    const summary: PlanSummary = { total: 0, enforce: 0, relax: 0, byCampaign: new Map(), sample: [] }
    for await (const item of this.campaignPlanItems(campaign)) {
      summary.total++
      summary[item.action]++
      if (summary.sample.length < sampleSize) summary.sample.push(item)
    }
    if (summary.total > 0) summary.byCampaign.set(campaign.id, { enforce: summary.enforce, relax: summary.relax })
    return summary
  }

  /**
   * Why a dry run lists no one, in sentences: no campaign, a campaign not armed, users still inside the new-user
   * window or before their deadline, already enforced, needing attention. For one campaign, or every campaign in force.
   */
  async whyNothingPlanned (campaign?: Campaign): Promise<string[]> {
    const now = this.clock.now()
    const campaigns = campaign === undefined ? await this.store.activeCampaigns() : [campaign]
    const outlooks = await Promise.all(campaigns.map(async (c) => ({ campaign: c, outlook: await this.store.campaignOutlook(c, now) })))
    return explainEmptyDryRun(outlooks, { previewing: campaign !== undefined })
  }

  /** Brings lapsed deadlines up to date, plans, writes the jobs, and works them off until none is ready. */
  async sweep (): Promise<SweepReport> {
    // Passes issued since the last sweep can pause a campaign before anything more is flipped (synchronously).
    const before = this.guard?.beforeSweep()
    // Awaited once the jobs are done; marked handled now, so a failure there is reported by this sweep, not as unhandled.
    before?.catch(() => {})
    await this.refreshLapsed()
    const now = this.clock.now()
    // The dry run's rows, written as jobs by one INSERT … SELECT: no plan is built in memory, however many are due.
    const planned = (await this.store.dueCounts(now)).reduce((sum, row) => sum + row.count, 0)
    const enqueued = await this.store.enqueueDue(now)
    const report: SweepReport = { planned, enqueued, completed: 0, retried: 0, waiting: 0, failed: 0, superseded: 0 }
    // Read once per sweep: re-reading them for every job was a quarter of the engine's time.
    const campaigns = await this.store.activeCampaigns()
    await Promise.all(Array.from({ length: this.settings.concurrency }, async () => this.work(report, campaigns)))
    await before
    await this.guard?.afterSweep()
    return report
  }

  private async work (report: SweepReport, campaigns: Campaign[]): Promise<void> {
    for (;;) {
      const [job] = await this.store.claim(this.owner, 1, this.settings.leaseMs, this.clock.now())
      if (job === undefined) return
      const outcome = await this.run(job, campaigns)
      report[outcome]++
    }
  }

  private async run (job: Job, campaigns: Campaign[]): Promise<'completed' | 'retried' | 'waiting' | 'failed' | 'superseded'> {
    const facts = await this.store.facts(job.userId)
    if (facts === undefined) {
      await this.store.complete(job.id, this.owner, this.clock.now())
      return 'completed'
    }
    // A job can outlive its reason (an extension or exemption since it was queued): then it must not act.
    const current = await this.store.state(job.userId)
    if (current === undefined || current.deadlineVersion !== job.deadlineVersion || current.desired !== job.action) {
      await this.store.atomically(async () => {
        await this.store.complete(job.id, this.owner, this.clock.now())
        await this.audit.append({ action: 'enforcement.superseded', actorLabel: 'engine', subjectUserId: job.userId, details: { action: job.action, deadlineVersion: job.deadlineVersion } })
      })
      return 'completed'
    }
    // Only attempts that never finished count here: a job waiting out a provider outage keeps going by design.
    if (job.unfinished >= this.settings.maxAttempts) {
      return this.fail(job, `${PROCESS_STOPPED}: gave up after ${job.unfinished} attempts that never finished (the portal stopped during each)`, job.attempts, campaigns)
    }
    const subject = this.subjectOf(facts, current.campaignId, campaigns)
    let provider: IdentityProvider | undefined
    try {
      provider = this.providerFor(facts.provider)
      // Idempotent at the provider (read, then set only if different): a retried or re-leased job is harmless.
      const { changed, note } = job.action === 'enforce' ? await provider.enforce(subject) : await provider.relax(subject)
      const now = this.clock.now()
      // One commit for the outcome: a crash before it leaves the job leased and it is retried (idempotently);
      // after it, the job, the user's record and the audit event all say the same thing.
      await this.store.atomically(async () => {
        // Lost the lease mid-call (it expired and another sweep took the job): that sweep records the outcome.
        if (!await this.store.complete(job.id, this.owner, now)) return
        await this.store.setEnforcedAt(job.userId, job.action === 'enforce' ? (facts.enforcedAt ?? now) : null)
        await this.audit.append({
          action: job.action === 'enforce' ? 'enforcement.enforced' : 'enforcement.relaxed', actorLabel: 'engine', subjectUserId: job.userId,
          details: { provider: facts.provider, changed, deadlineVersion: job.deadlineVersion, attempt: job.attempts + 1, ...(note === undefined ? {} : { note }) }
        })
      })
      await this.refreshUser(job.userId, campaigns)
      return 'completed'
    } catch (err) {
      const message = describeError(err)
      const attempts = job.attempts + 1
      if (provider !== undefined && saysNotFound(err) && await this.goneFromDirectory(provider, subject)) {
        return this.supersedeGone(job, facts, message, campaigns)
      }
      if (!isTransient(err)) return this.fail(job, message, attempts, campaigns)
      const retryAfter = err instanceof ProviderError ? err.retryAfterMs : null
      const now = this.clock.now()
      if (attempts < this.settings.maxAttempts) {
        const delay = Math.max(retryAfter ?? 0, this.backoff(attempts))
        await this.store.retryLater(job.id, this.owner, message, new Date(now.getTime() + delay), now)
        await this.sleep(Math.min(delay, this.settings.maxBackoffMs))
        return 'retried'
      }
      // The fast attempts ran out on an error that heals (an outage, throttling): wait longer, never give up on it.
      const retryAt = new Date(now.getTime() + Math.max(retryAfter ?? 0, longRetryDelay(this.settings.longRetryScheduleMs, attempts - this.settings.maxAttempts)))
      await this.store.atomically(async () => {
        await this.store.retryLater(job.id, this.owner, message, retryAt, now)
        await this.audit.append({ action: 'enforcement.retry_scheduled', actorLabel: 'engine', subjectUserId: job.userId, details: { action: job.action, attempts, error: message, retryAt: retryAt.toISOString() } })
      })
      await this.refreshUser(job.userId, campaigns)
      return 'waiting'
    }
  }

  /** Fails a job for good (an error a person must fix): audited, and the user shown as needing attention. */
  private async fail (job: Job, message: string, attempts: number, campaigns: Campaign[]): Promise<'failed'> {
    await this.store.atomically(async () => {
      await this.store.failForGood(job.id, this.owner, message, this.clock.now())
      await this.audit.append({ action: 'enforcement.failed', actorLabel: 'engine', subjectUserId: job.userId, details: { action: job.action, attempts, error: message } })
    })
    await this.refreshUser(job.userId, campaigns)
    return 'failed'
  }

  /** A not-found answer is believed only if reading the user's state says the same: a missing policy or group is not a missing user. */
  private async goneFromDirectory (provider: IdentityProvider, subject: ProviderSubject): Promise<boolean> {
    try {
      await provider.enforcementState(subject)
      return false
    } catch (err) {
      return saysNotFound(err)
    }
  }

  /**
   * The user was deleted at the directory: nothing is left to enforce or lift. The job ends as superseded with an
   * audit line, and the account is disabled here as the next sync would, so no later sweep or dry run lists it again.
   */
  private async supersedeGone (job: Job, facts: UserFacts, error: string, campaigns: Campaign[]): Promise<'superseded'> {
    const now = this.clock.now()
    await this.store.atomically(async () => {
      if (!await this.store.supersede(job.id, this.owner, now)) return
      await this.store.markGoneFromDirectory(job.userId, now)
      await this.audit.append({
        action: 'enforcement.superseded', actorLabel: 'engine', subjectUserId: job.userId,
        details: { action: job.action, deadlineVersion: job.deadlineVersion, reason: `the user no longer exists at ${facts.provider}; the account is disabled in the portal`, error }
      })
    })
    await this.refreshUser(job.userId, campaigns)
    return 'superseded'
  }

  /** The subject as a provider sees it; `enrolled` means a qualifying method registered where the user signs in. */
  private subjectOf (facts: UserFacts, campaignId: string | null, campaigns: Campaign[]): ProviderSubject {
    const campaign = campaigns.find((c) => c.id === campaignId)
    const policy = campaign ?? this.settings.defaultMethodPolicy
    return {
      userId: facts.userId,
      externalId: facts.externalId,
      email: facts.email,
      // Something to sign in with is registered, even where the campaign asks for a second method as well.
      enrolled: holdsQualifyingMethod(assessMethods(facts.privileged, facts.methodKinds, policy, this.clock.now())),
      // The campaign's choice of AWS policy: enforce attaches it, drift checks for it.
      ...(campaign === undefined ? {} : { awsPolicyVariant: campaign.awsPolicyVariant })
    }
  }

  /**
   * The provider answered again (a sync or drift check reached it): jobs of its users waiting after a transient
   * error are due at once, and their users' states no longer promise a later time. Returns how many.
   */
  async retryWaitingNow (provider: string): Promise<number> {
    const userIds = await this.store.retryWaitingNow(provider, this.clock.now())
    if (userIds.length === 0) return 0
    await this.audit.append({ action: 'enforcement.retry_brought_forward', actorLabel: 'engine', details: { provider, users: userIds.length } })
    const campaigns = await this.store.activeCampaigns()
    for (const userId of userIds) await this.refreshUser(userId, campaigns)
    return userIds.length
  }

  /**
   * An admin asks to try a user in attention again (the dashboard's Retry): their failed job ends, their state is
   * derived afresh, and the next sweep acts if a deadline has passed in an armed campaign. Audited with the admin.
   */
  async retryFailed (userId: string, actor: Actor): Promise<UserState | undefined> {
    if (await this.store.supersedeFailed(userId, this.clock.now()) === 0) throw new DomainError('nothing_to_retry', 'This user has no failed enforcement to retry.')
    await this.audit.append({ action: 'enforcement.retry_requested', actorId: actor.id, actorLabel: actor.label, subjectUserId: userId, details: {}, ip: actor.ip, userAgent: actor.userAgent })
    return this.refreshUser(userId)
  }

  /** Retry for everyone needing attention because a job failed for good; how many. Each one audited. */
  async retryAllFailed (actor: Actor, batchSize = 500): Promise<number> {
    const campaigns = await this.store.activeCampaigns()
    let count = 0
    let cursor: string | null = null
    for (;;) {
      const ids = await this.store.failedAttentionAfter(cursor, batchSize)
      if (ids.length === 0) return count
      for (const userId of ids) {
        await this.store.supersedeFailed(userId, this.clock.now())
        await this.audit.append({ action: 'enforcement.retry_requested', actorId: actor.id, actorLabel: actor.label, subjectUserId: userId, details: { all: true }, ip: actor.ip, userAgent: actor.userAgent })
        await this.refreshUser(userId, campaigns)
        count++
      }
      cursor = ids[ids.length - 1]
    }
  }

  /**
   * A deliberate change (extension, exemption, its revocation) starts the user afresh: an earlier failure no longer
   * holds them in attention. The change itself is what the caller audits.
   */
  async clearFailure (userId: string): Promise<void> {
    await this.store.supersedeFailed(userId, this.clock.now())
  }

  /** Arming a campaign starts its users afresh: failures from before it was disarmed are tried again. */
  async clearCampaignFailures (campaignId: string): Promise<number> {
    return (await this.store.supersedeFailedInCampaign(campaignId, this.clock.now())).length
  }

  /** Exponential backoff with full jitter, capped. */
  private backoff (attempt: number): number {
    const ceiling = Math.min(this.settings.maxBackoffMs, this.settings.baseBackoffMs * 2 ** (attempt - 1))
    return Math.round(this.random() * ceiling)
  }
}

/** The plan's reason for pages: the same as planReason, as catalogue words (the deadline a moment in the reader's zone). */
function planWords (due: { action: JobAction, state: UserState, deadline: Date | null }): Words {
  if (due.action === 'relax') return { key: due.state === 'exempt' || due.state === 'attention' ? 'reasons.plan_relax_exempt' : 'reasons.plan_relax' }
  const values = { enrolled: due.state === 'enrolled' ? 'yes' : 'no' }
  return { key: 'reasons.plan_enforce', values: due.deadline === null ? { ...values, dated: 'no' } : { ...values, dated: 'yes', deadline: due.deadline } }
}

function planReason (due: { action: JobAction, state: UserState, deadline: Date | null }): string {
  if (due.action === 'relax') {
    return due.state === 'exempt' || due.state === 'attention' ? 'Exempted: MFA is no longer enforced by the portal.' : 'Deadline moved or user no longer targeted: giving the grace period back.'
  }
  const day = due.deadline?.toISOString().slice(0, 10) ?? 'the deadline'
  return due.state === 'enrolled'
    ? `Deadline ${day} passed; has a qualifying method: making MFA mandatory.`
    : `Deadline ${day} passed without a qualifying method: making MFA mandatory (registration required at next sign-in).`
}

function describeError (err: unknown): string {
  if (err instanceof ProviderError) return `${err.code}: ${err.message}`.slice(0, 500)
  return (err instanceof Error ? err.message : String(err)).slice(0, 500)
}
