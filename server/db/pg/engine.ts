import { and, asc, desc, eq, gt, inArray, isNotNull, isNull, lte, notExists, sql, type SQL } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { CampaignOutlook } from '../../domain/dry-run.ts'
import type { Extension } from '../../domain/deadlines.ts'
import type { Campaign, DeadlineFacts, DeadlineRead, EngineStore, Job, JobAction, JobTrouble, StoredState, UserFacts } from '../../domain/engine.ts'
import type { DerivedState, UserState } from '../../domain/states.ts'
import { encodeWords } from '../../domain/stored-words.ts'
import { deadlineFactsFrom, exemptionFrom, storedStateFrom, type FactsRow } from '../engine.ts'
import { campaignFromJson, type CampaignJson } from '../campaigns.ts'
import type { MethodRow } from '../methods.ts'
import { LIVE_CAMPAIGNS_JSON } from './campaigns.ts'
import type { PgAccess } from './access.ts'
import { QueueUpkeep } from './queue-upkeep.ts'
import { enforcementJobs, exemptions, stateTransitions, userStates, users } from './schema.ts'

const DAY_MS = 86_400_000

/**
 * A user's deadline facts in one row: groups, methods, unused recovery codes and extensions with the user (read with
 * the home page's session too, through DEADLINE_COLUMNS: there `users` is the user the session names).
 */
const FACTS_COLUMNS = {
  id: users.id, email: users.email, provider: users.provider, externalId: users.externalId, providerMethods: users.providerMethods,
  providerAttributes: users.providerAttributes, driftFlaggedAt: users.driftFlaggedAt, privileged: users.privileged, disabled: users.disabled,
  firstSeenAt: users.firstSeenAt, directoryCreatedAt: users.directoryCreatedAt, enforcedAt: users.enforcedAt,
  // Written out with aliases: drizzle leaves columns unqualified in a one-table select, and "id" would then be the subquery's own.
  groups: sql<string[] | null>`(SELECT array_agg(g.group_name ORDER BY g.group_name) FROM user_groups g WHERE g.user_id = users.id)`,
  // What the home page lists (MethodRow), none of the secrets; json_agg keeps the bigint times as numbers.
  methods: sql<MethodRow[] | null>`(SELECT json_agg(json_build_object('id', m.id, 'userId', m.user_id, 'kind', m.kind, 'name', m.name, 'createdAt', m.created_at,
    'lastUsedAt', m.last_used_at, 'phone', m.phone, 'aaguid', m.aaguid) ORDER BY m.created_at, m.id) FROM auth_methods m WHERE m.user_id = users.id)`,
  recoveryCodes: sql<number>`(SELECT count(*) FROM recovery_codes r WHERE r.user_id = users.id AND r.used_at IS NULL AND r.voided_at IS NULL)::int`,
  extensions: sql<Extension[] | null>`(SELECT json_agg(json_build_object('campaignId', e.campaign_id, 'days', e.days)) FROM extensions e WHERE e.user_id = users.id)`
}

/** FACTS_COLUMNS' row: the aggregates are null where there is nothing to aggregate. */
type PgFactsRow = Omit<FactsRow, 'groups' | 'methods'> & { groups: string[] | null, methods: MethodRow[] | null, extensions: Extension[] | null }

function factsOf (row: PgFactsRow): DeadlineFacts {
  return deadlineFactsFrom({ ...row, groups: row.groups ?? [], methods: row.methods ?? [] }, row.extensions ?? [])
}

/** The facts with the live campaigns: the engine's read for a deadline and policy, and the home page's session read. */
export const DEADLINE_COLUMNS = { ...FACTS_COLUMNS, campaigns: LIVE_CAMPAIGNS_JSON }

/** DEADLINE_COLUMNS' row. */
export type DeadlineRow = PgFactsRow & { campaigns: CampaignJson[] }

/** DEADLINE_COLUMNS' row as the facts and campaigns; undefined when it names no user (a left join's nulls). */
export function deadlineReadOf (row: DeadlineRow): DeadlineRead | undefined {
  return row.id == null ? undefined : { facts: factsOf(row), campaigns: row.campaigns.map(campaignFromJson) }
}

/** A user's state (read with the session too, pg/sessions.ts). */
export const STATE_COLUMNS = {
  state: userStates.state, deadline: userStates.deadline, deadlineVersion: userStates.deadlineVersion, desired: userStates.desired, campaignId: userStates.campaignId, softBlockAt: userStates.softBlockAt
}

// Rows read at a time by due(): the dry run streams them, however many users are due.
const DUE_BATCH = 500

type DueRow = { userId: string, email: string, action: JobAction, deadlineVersion: number, campaignId: string | null, state: UserState, deadline: Date | null, retryAt: Date | null }

// The user's current job, when it waits to be tried again after a provider error (queued, with an error recorded).
const waiting = alias(enforcementJobs, 'waiting')
const WAITING_JOB = and(eq(waiting.userId, userStates.userId), eq(waiting.action, userStates.desired), eq(waiting.deadlineVersion, userStates.deadlineVersion),
  eq(waiting.status, 'queued'), isNotNull(waiting.lastError))

const DUE_COLUMNS = {
  userId: userStates.userId,
  email: users.email,
  action: sql<JobAction>`${userStates.desired}`,
  deadlineVersion: userStates.deadlineVersion,
  campaignId: userStates.campaignId,
  state: userStates.state,
  deadline: userStates.deadline,
  retryAt: waiting.nextAttemptAt
}

// A job ends while its owner still holds the lease; a sweep that lost it (it expired and another took the job) changes nothing.
const leased = (jobId: string, owner: string): SQL | undefined =>
  and(eq(enforcementJobs.id, jobId), eq(enforcementJobs.leaseOwner, owner), eq(enforcementJobs.status, 'running'))

const idsAfter = (column: typeof users.id | typeof userStates.userId, cursor: string | null): SQL => gt(column, cursor ?? '')

/**
 * The engine's storage on PostgreSQL: keyset scans in batches, jobs claimed with FOR UPDATE SKIP LOCKED.
 * `atomically` is left out of Async<>, which would let its work stay synchronous: here that work must be awaited.
 */
export class PgEngineStore implements EngineStore {
  // Read often (state refreshes, deadline explanations; where a user stands and the home page's facts, when not read
  // with the session): PgAccess.preparedRead.
  private readonly stateById
  private readonly factsById
  private readonly factsAndCampaignsById

  constructor (private readonly access: PgAccess, private readonly campaigns: { list(): Promise<Campaign[]> }, private readonly upkeep: QueueUpkeep = new QueueUpkeep(access.db)) {
    this.stateById = access.preparedRead('state_by_user', (db, userId) => db.select(STATE_COLUMNS).from(userStates).where(eq(userStates.userId, userId)))
    this.factsById = access.preparedRead('facts_by_user', (db, userId) => db.select(FACTS_COLUMNS).from(users).where(eq(users.id, userId)))
    // The same with the live campaigns, for a deadline and policy (the home page reads them with its session instead).
    this.factsAndCampaignsById = access.preparedRead('facts_campaigns_by_user', (db, userId) =>
      db.select(DEADLINE_COLUMNS).from(users).where(eq(users.id, userId)))
  }

  async activeCampaigns (): Promise<Campaign[]> {
    return await this.campaigns.list()
  }

  async userIdsAfter (cursor: string | null, limit: number): Promise<string[]> {
    const rows = await this.access.current.select({ id: users.id }).from(users).where(idsAfter(users.id, cursor)).orderBy(users.id).limit(limit)
    return rows.map((row) => row.id)
  }

  async facts (userId: string): Promise<UserFacts | undefined> {
    const facts = await this.deadlineFacts(userId)
    if (facts === undefined) return undefined
    const [exemption] = await this.access.current.select({ kind: exemptions.kind, expiresAt: exemptions.expiresAt }).from(exemptions)
      .where(and(eq(exemptions.userId, userId), isNull(exemptions.revokedAt)))
      .orderBy(sql`CASE ${exemptions.kind} WHEN 'break_glass' THEN 0 ELSE 1 END`, desc(sql`coalesce(${exemptions.expiresAt}, 9000000000000000)`)).limit(1)
    return { ...facts, exemption: exemptionFrom(exemption), trouble: await this.trouble(userId) }
  }

  async deadlineFacts (userId: string): Promise<DeadlineFacts | undefined> {
    const [row] = await this.factsById(userId)
    return row === undefined ? undefined : factsOf(row)
  }

  async deadlineFactsWithCampaigns (userId: string): Promise<DeadlineRead | undefined> {
    const [row] = await this.factsAndCampaignsById(userId)
    return row === undefined ? undefined : deadlineReadOf(row)
  }

  /**
   * The user's latest job decides: failed means attention, queued after an error means waiting to retry, until
   * something newer happens. SQLite breaks a tie on updated_at by rowid; the newer job is the one for the later
   * version here.
   */
  private async trouble (userId: string): Promise<JobTrouble | null> {
    const [job] = await this.access.current.select({ action: enforcementJobs.action, status: enforcementJobs.status, lastError: enforcementJobs.lastError, nextAttemptAt: enforcementJobs.nextAttemptAt })
      .from(enforcementJobs).where(eq(enforcementJobs.userId, userId))
      .orderBy(desc(enforcementJobs.updatedAt), desc(enforcementJobs.createdAt), desc(enforcementJobs.deadlineVersion)).limit(1)
    if (job === undefined || job.lastError === null) return null
    if (job.status === 'failed') return { action: job.action, error: job.lastError, retryAt: null }
    if (job.status === 'queued') return { action: job.action, error: job.lastError, retryAt: new Date(job.nextAttemptAt) }
    return null
  }

  async state (userId: string): Promise<StoredState | undefined> {
    const [row] = await this.stateById(userId)
    return row === undefined ? undefined : storedStateFrom(row)
  }

  /**
   * Writes the derived state; records a transition when the state changes and bumps the version when the deadline
   * or the desired action does. The user's row is locked first, so two instances deriving the same user at once
   * take turns and each records the transition from the state the other left.
   */
  async saveState (userId: string, derived: DerivedState, deadline: Date | null, campaignId: string | null, softBlockAt: Date | null, now: Date, wave: number | null = null): Promise<void> {
    const deadlineMs = deadline?.getTime() ?? null
    const written = {
      state: derived.state, reason: derived.reason, reasonWords: encodeWords(derived.words), campaignId, desired: derived.desiredEnforcement,
      softBlockAt: softBlockAt?.getTime() ?? null, wave, updatedAt: now.getTime()
    }
    await this.access.transaction(async () => {
      const db = this.access.current
      // NO KEY UPDATE: serialises writers of this user's state without blocking rows that merely reference the user.
      await db.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('no key update')
      const before = await this.state(userId)
      await db.insert(userStates).values({ userId, ...written, deadline: deadlineMs, deadlineVersion: 0 }).onConflictDoUpdate({
        target: userStates.userId,
        set: {
          ...written,
          deadline: deadlineMs,
          deadlineVersion: sql`user_states.deadline_version + CASE WHEN user_states.deadline IS DISTINCT FROM ${deadlineMs}::bigint
            OR user_states.desired IS DISTINCT FROM ${derived.desiredEnforcement}::text THEN 1 ELSE 0 END`
        }
      })
      if (before?.state !== derived.state) {
        await db.insert(stateTransitions).values({ userId, fromState: before?.state ?? null, toState: derived.state, reason: derived.reason, at: now.getTime() })
      }
    })
  }

  /**
   * Users whose desired enforcement is due, in keyset batches over the two index ranges: every 'relax' (by user id),
   * then every 'enforce' whose deadline has passed (by deadline, then user id).
   */
  async * due (now: Date): AsyncIterable<DueRow> {
    for (let after = ''; ;) {
      const rows = await this.dueBatch(and(eq(userStates.desired, 'relax'), gt(userStates.userId, after)), [asc(userStates.userId)])
      yield * rows
      if (rows.length < DUE_BATCH) break
      after = rows[rows.length - 1].userId
    }
    for (let after: { deadline: number, userId: string } | null = null; ;) {
      const next: SQL = after === null ? sql`true` : sql`(${userStates.deadline}, ${userStates.userId}) > (${after.deadline}::bigint, ${after.userId})`
      const rows = await this.dueBatch(and(eq(userStates.desired, 'enforce'), lte(userStates.deadline, now.getTime()), next), [asc(userStates.deadline), asc(userStates.userId)])
      yield * rows
      if (rows.length < DUE_BATCH) return
      const last = rows[rows.length - 1]
      after = { deadline: (last.deadline as Date).getTime(), userId: last.userId }
    }
  }

  private async dueBatch (where: SQL | undefined, order: SQL[]): Promise<DueRow[]> {
    const rows = await this.access.current.select(DUE_COLUMNS).from(userStates)
      .innerJoin(users, eq(users.id, userStates.userId)).leftJoin(waiting, WAITING_JOB)
      .where(where).orderBy(...order).limit(DUE_BATCH)
    return rows.map((row) => ({ ...row, deadline: row.deadline === null ? null : new Date(row.deadline), retryAt: row.retryAt === null ? null : new Date(row.retryAt) }))
  }

  async overdueInAfter (campaignId: string, cursor: string | null, now: Date, limit: number): Promise<Array<{ userId: string, email: string, deadlineVersion: number, state: UserState, deadline: Date | null }>> {
    // 'pending' too: a deadline that passed since the state was last derived is refreshed by the sweep itself.
    const rows = await this.access.current.select({ userId: userStates.userId, email: users.email, deadlineVersion: userStates.deadlineVersion, state: userStates.state, deadline: userStates.deadline })
      .from(userStates).innerJoin(users, eq(users.id, userStates.userId))
      .where(and(eq(userStates.campaignId, campaignId), lte(userStates.deadline, now.getTime()), inArray(userStates.state, ['pending', 'enrolled', 'overdue']), idsAfter(userStates.userId, cursor)))
      .orderBy(userStates.userId).limit(limit)
    return rows.map((row) => ({ ...row, deadline: row.deadline === null ? null : new Date(row.deadline) }))
  }

  async campaignUserIdsAfter (campaignId: string, cursor: string | null, limit: number): Promise<string[]> {
    return await this.stateUserIds(and(eq(userStates.campaignId, campaignId), idsAfter(userStates.userId, cursor)), limit)
  }

  async enforcedAfter (cursor: string | null, limit: number): Promise<string[]> {
    return await this.stateUserIds(and(eq(userStates.state, 'enforced'), idsAfter(userStates.userId, cursor)), limit)
  }

  async lapsedAfter (cursor: string | null, now: Date, limit: number): Promise<string[]> {
    return await this.stateUserIds(and(inArray(userStates.state, ['pending', 'enrolled']), lte(userStates.deadline, now.getTime()), idsAfter(userStates.userId, cursor)), limit)
  }

  async failedAttentionAfter (cursor: string | null, limit: number): Promise<string[]> {
    const failed = this.access.current.select({ one: sql`1` }).from(enforcementJobs).where(and(eq(enforcementJobs.userId, userStates.userId), eq(enforcementJobs.status, 'failed')))
    return await this.stateUserIds(and(eq(userStates.state, 'attention'), idsAfter(userStates.userId, cursor), sql`EXISTS ${failed}`), limit)
  }

  private async stateUserIds (where: SQL | undefined, limit: number): Promise<string[]> {
    const rows = await this.access.current.select({ userId: userStates.userId }).from(userStates).where(where).orderBy(userStates.userId).limit(limit)
    return rows.map((row) => row.userId)
  }

  async unassessedAfter (cursor: string | null, limit: number): Promise<string[]> {
    const derived = this.access.current.select({ one: sql`1` }).from(userStates).where(eq(userStates.userId, users.id))
    const rows = await this.access.current.select({ id: users.id }).from(users).where(and(idsAfter(users.id, cursor), notExists(derived))).orderBy(users.id).limit(limit)
    return rows.map((row) => row.id)
  }

  async dueCounts (now: Date): Promise<Array<{ action: JobAction, campaignId: string | null, count: number }>> {
    const result = await this.access.current.execute<{ action: JobAction, campaignId: string | null, count: number }>(sql`
      SELECT 'relax' AS action, campaign_id AS "campaignId", count(*)::int AS count FROM user_states WHERE desired = 'relax' GROUP BY campaign_id
      UNION ALL
      SELECT 'enforce', campaign_id, count(*)::int FROM user_states WHERE desired = 'enforce' AND deadline <= ${now.getTime()}::bigint GROUP BY campaign_id`)
    return result.rows
  }

  /**
   * One INSERT … SELECT of every due user's job; the unique key (user, action, version) turns a job another sweep
   * already wrote into nothing, even when two instances run this at once. Rows go in user id order, so two such
   * statements meet on the same key in the same order and one waits for the other instead of deadlocking.
   */
  async enqueueDue (now: Date): Promise<number> {
    const at = sql`${now.getTime()}::bigint`
    const result = await this.access.current.execute(sql`
      INSERT INTO enforcement_jobs (id, user_id, action, deadline_version, status, attempts, next_attempt_at, created_at, updated_at)
      SELECT replace(gen_random_uuid()::text, '-', ''), user_id, desired, deadline_version, 'queued', 0, ${at}, ${at}, ${at} FROM user_states
      WHERE desired = 'relax' OR (desired = 'enforce' AND deadline <= ${at})
      ORDER BY user_id
      ON CONFLICT (user_id, action, deadline_version) DO NOTHING`)
    this.upkeep.changed(result.rowCount ?? 0)
    return result.rowCount ?? 0
  }

  /**
   * Claims up to `limit` ready jobs, one statement each: an expired lease first, else the next due job. SKIP LOCKED
   * passes over a job another instance is claiming this instant, so two instances never take the same one.
   *
   * Taking over an expired lease counts as an attempt, and as one that never finished: last_error counts those in a
   * row ('interrupted N'; while it is NULL no attempt ever finished, so all of them). A job that kills its process
   * every time still ends; one waiting out a provider outage (last_error: the provider's words) does not.
   */
  async claim (owner: string, limit: number, leaseMs: number, now: Date): Promise<Job[]> {
    const at = sql`${now.getTime()}::bigint`
    const jobs: Job[] = []
    for (let i = 0; i < limit; i++) {
      const result = await this.access.current.execute<Pick<Job, keyof Job>>(sql`
        UPDATE enforcement_jobs SET attempts = attempts + CASE WHEN status = 'running' THEN 1 ELSE 0 END, status = 'running',
            lease_owner = ${owner}, lease_expires_at = ${now.getTime() + leaseMs}::bigint, updated_at = ${at},
            last_error = CASE WHEN status <> 'running' OR last_error IS NULL THEN last_error
              WHEN last_error ~* '^interrupted [0-9]+$' THEN 'interrupted ' || (substr(last_error, 13)::int + 1)
              ELSE 'interrupted 1' END
          WHERE id = coalesce(
            (SELECT id FROM enforcement_jobs WHERE status = 'running' AND lease_expires_at <= ${at} ORDER BY lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED),
            (SELECT id FROM enforcement_jobs WHERE status = 'queued' AND next_attempt_at <= ${at} ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED))
          AND ((status = 'queued' AND next_attempt_at <= ${at}) OR (status = 'running' AND lease_expires_at <= ${at}))
          RETURNING id, user_id AS "userId", action, deadline_version AS "deadlineVersion", attempts,
            CASE WHEN last_error IS NULL THEN attempts WHEN last_error ~* '^interrupted [0-9]+$' THEN substr(last_error, 13)::int ELSE 0 END AS unfinished`)
      const [job] = result.rows
      if (job === undefined) break
      jobs.push(job)
    }
    this.upkeep.changed(jobs.length)
    return jobs
  }

  async complete (jobId: string, owner: string, now: Date): Promise<boolean> {
    return await this.finish(jobId, owner, { status: 'done', lastError: null, updatedAt: now.getTime() })
  }

  async retryLater (jobId: string, owner: string, error: string, nextAttemptAt: Date, now: Date): Promise<void> {
    await this.finish(jobId, owner, { status: 'queued', lastError: error, nextAttemptAt: nextAttemptAt.getTime(), updatedAt: now.getTime() })
  }

  async failForGood (jobId: string, owner: string, error: string, now: Date): Promise<void> {
    await this.finish(jobId, owner, { status: 'failed', lastError: error, updatedAt: now.getTime() })
  }

  async supersede (jobId: string, owner: string, now: Date): Promise<boolean> {
    return await this.finish(jobId, owner, { status: 'superseded', updatedAt: now.getTime() })
  }

  /** Ends an attempt of a job this owner still leases: the lease released, the attempt counted. Whether it still held it. */
  private async finish (jobId: string, owner: string, fields: Partial<typeof enforcementJobs.$inferInsert>): Promise<boolean> {
    const result = await this.access.current.update(enforcementJobs)
      .set({ ...fields, leaseOwner: null, leaseExpiresAt: null, attempts: sql`${enforcementJobs.attempts} + 1` })
      .where(leased(jobId, owner))
    this.upkeep.changed(result.rowCount ?? 0)
    return result.rowCount === 1
  }

  /** Runs work as one transaction, joining the caller's if one is open; its statements must all be awaited inside it. */
  async atomically<T> (work: () => Promise<T>): Promise<T> {
    return await this.access.transaction(work)
  }

  async setEnforcedAt (userId: string, at: Date | null): Promise<void> {
    await this.access.current.update(users).set({ enforcedAt: at?.getTime() ?? null }).where(eq(users.id, userId))
  }

  async setDriftFlagged (userId: string, at: Date | null): Promise<void> {
    await this.access.current.update(users).set({ driftFlaggedAt: at?.getTime() ?? null }).where(eq(users.id, userId))
  }

  async markGoneFromDirectory (userId: string, now: Date): Promise<void> {
    await this.access.current.update(users).set({ disabled: true, enforcedAt: null, updatedAt: now.getTime() }).where(eq(users.id, userId))
  }

  /** Waiting jobs are queued ones that already failed (last_error set) and fall due later. */
  async retryWaitingNow (provider: string, now: Date): Promise<string[]> {
    const ofProvider = this.access.current.select({ id: users.id }).from(users).where(eq(users.provider, provider))
    const rows = await this.access.current.update(enforcementJobs).set({ nextAttemptAt: now.getTime(), updatedAt: now.getTime() })
      .where(and(eq(enforcementJobs.status, 'queued'), gt(enforcementJobs.nextAttemptAt, now.getTime()), isNotNull(enforcementJobs.lastError), inArray(enforcementJobs.userId, ofProvider)))
      .returning({ userId: enforcementJobs.userId })
    this.upkeep.changed(rows.length)
    return rows.map((row) => row.userId)
  }

  async supersedeFailed (userId: string, now: Date): Promise<number> {
    const result = await this.access.current.update(enforcementJobs).set({ status: 'superseded', updatedAt: now.getTime() })
      .where(and(eq(enforcementJobs.userId, userId), eq(enforcementJobs.status, 'failed')))
    this.upkeep.changed(result.rowCount ?? 0)
    return result.rowCount ?? 0
  }

  async supersedeFailedInCampaign (campaignId: string, now: Date): Promise<string[]> {
    const inCampaign = this.access.current.select({ userId: userStates.userId }).from(userStates).where(eq(userStates.campaignId, campaignId))
    const rows = await this.access.current.update(enforcementJobs).set({ status: 'superseded', updatedAt: now.getTime() })
      .where(and(eq(enforcementJobs.status, 'failed'), inArray(enforcementJobs.userId, inCampaign)))
      .returning({ userId: enforcementJobs.userId })
    this.upkeep.changed(rows.length)
    return rows.map((row) => row.userId)
  }

  /** One pass over the campaign's users: by state, and whose deadline is still ahead through the new-user window or otherwise. */
  async campaignOutlook (campaign: Campaign, now: Date): Promise<CampaignOutlook> {
    const at = sql`${now.getTime()}::bigint`
    const windowMs = sql`${campaign.newUserWindowDays * DAY_MS}::bigint`
    const result = await this.access.current.execute<{ state: UserState, n: number, inWindow: number, windowEnds: string | null, ahead: number, nextAhead: string | null }>(sql`
      SELECT state, count(*)::int AS n, (count(*) FILTER (WHERE windowed))::int AS "inWindow", max(window_ends) FILTER (WHERE windowed) AS "windowEnds",
          (count(*) FILTER (WHERE deadline > ${at} AND NOT windowed))::int AS ahead, min(deadline) FILTER (WHERE deadline > ${at} AND NOT windowed) AS "nextAhead"
        FROM (SELECT s.state, s.deadline, u.joined + ${windowMs} AS window_ends,
            (s.deadline > ${at} AND u.joined > ${campaign.startsAt.getTime()}::bigint AND u.joined + ${windowMs} > ${campaign.deadline.getTime()}::bigint) AS windowed
          FROM user_states s
            -- The new-user window counts from the directory's creation date, else from first seen (domain/deadlines.ts joinedAt).
            JOIN (SELECT id, coalesce(directory_created_at, first_seen_at) AS joined FROM users) u ON u.id = s.user_id WHERE s.campaign_id = ${campaign.id}) campaign_users
        GROUP BY state`)
    const outlook: CampaignOutlook = { byState: {}, inWindow: { count: 0, until: null }, ahead: { count: 0, next: null } }
    for (const row of result.rows) {
      outlook.byState[row.state] = row.n
      outlook.inWindow.count += row.inWindow
      outlook.ahead.count += row.ahead
      // bigint comes back from pg as text.
      if (row.windowEnds !== null && (outlook.inWindow.until === null || Number(row.windowEnds) > outlook.inWindow.until.getTime())) outlook.inWindow.until = new Date(Number(row.windowEnds))
      if (row.nextAhead !== null && (outlook.ahead.next === null || Number(row.nextAhead) < outlook.ahead.next.getTime())) outlook.ahead.next = new Date(Number(row.nextAhead))
    }
    return outlook
  }
}
