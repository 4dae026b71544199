import type { CampaignStore } from '../domain/campaigns.ts'
import type { CampaignOutlook } from '../domain/dry-run.ts'
import type { Campaign, DeadlineFacts, DeadlineRead, EngineStore, Job, JobAction, JobTrouble, StoredState, UserFacts } from '../domain/engine.ts'
import type { Extension } from '../domain/deadlines.ts'
import { countingMethods } from '../domain/protection.ts'
import type { ExemptionFact, DerivedState, UserState } from '../domain/states.ts'
import { encodeWords } from '../domain/stored-words.ts'
import { campaignFromJson, LIVE_CAMPAIGNS_JSON, textOrder, type CampaignJson } from './campaigns.ts'
import { toMethod, type MethodRow } from './methods.ts'
import { jsonColumn, type SqliteAccess } from './sqlite-access.ts'
import type { UserWithGroupsRow } from './users.ts'

const DAY_MS = 86_400_000
// The user's current job, when it waits to be tried again after a provider error (queued, with an error recorded).
const WAITING_JOB = `LEFT JOIN enforcement_jobs j ON j.user_id = s.user_id AND j.action = s.desired AND j.deadline_version = s.deadline_version
          AND j.status = 'queued' AND j.last_error IS NOT NULL`

const DUE_BATCH = 1000

type DueRow = { userId: string, email: string, action: JobAction, deadlineVersion: number, campaignId: string | null, state: UserState, deadline: Date | null, retryAt: Date | null }
type DueRecord = Omit<DueRow, 'deadline' | 'retryAt'> & { deadline: number | null, retryAt: number | null }

function dueRow (row: DueRecord): DueRow {
  return { ...row, deadline: row.deadline === null ? null : new Date(row.deadline), retryAt: row.retryAt === null ? null : new Date(row.retryAt) }
}

// A method as the facts read gives it (a MethodRow, JSON): what the home page lists, none of the secrets.
const METHOD_FIELDS = `'id', id, 'userId', user_id, 'kind', kind, 'name', name, 'createdAt', created_at, 'lastUsedAt', last_used_at, 'phone', phone, 'aaguid', aaguid`

/**
 * A user's deadline facts as columns of the users row aliased `table`: the user with their groups, methods, unused
 * recovery codes and extensions, in SqliteFactsRow's fields (read by position: factsFromColumns).
 */
function factsFields (table: string): Array<[keyof SqliteFactsRow, string]> {
  return [
    ['id', `${table}.id`], ['email', `${table}.email`], ['provider', `${table}.provider`], ['externalId', `${table}.external_id`],
    ['providerMethods', `${table}.provider_methods`], ['providerAttributes', `${table}.provider_attributes`], ['driftFlaggedAt', `${table}.drift_flagged_at`],
    ['privileged', `${table}.privileged`], ['disabled', `${table}.disabled`], ['firstSeenAt', `${table}.first_seen_at`],
    ['directoryCreatedAt', `${table}.directory_created_at`], ['enforcedAt', `${table}.enforced_at`],
    ['groups', `(SELECT group_concat(group_name, char(31)) FROM user_groups WHERE user_id = ${table}.id)`],
    // In no order: an aggregate's ORDER BY makes SQLite build a temporary b-tree on every read (factsOf sorts them).
    ['methods', `(SELECT json_group_array(json_object(${METHOD_FIELDS})) FROM auth_methods WHERE user_id = ${table}.id)`],
    ['recoveryCodes', `(SELECT count(*) FROM recovery_codes WHERE user_id = ${table}.id AND used_at IS NULL AND voided_at IS NULL)`],
    ['extensions', `(SELECT json_group_array(json_object('campaignId', campaign_id, 'days', days)) FROM extensions WHERE user_id = ${table}.id)`]
  ]
}

const FACT_NAMES = factsFields('users').map(([name]) => name)

function factsColumns (table: string): string {
  return factsFields(table).map(([, column]) => column).join(', ')
}

/** factsColumns' values as the facts; undefined when they name no user. */
function factsFromColumns (values: readonly unknown[]): DeadlineFacts | undefined {
  if (values[0] === null) return undefined
  const row: Record<string, unknown> = {}
  for (let i = 0; i < FACT_NAMES.length; i++) row[FACT_NAMES[i]] = values[i]
  const { groups } = row as SqliteFactsRow
  return factsOf(row as SqliteFactsRow, groups === null ? [] : groups.split('\u001f'))
}

/** The facts a users row with its groups (db/users.ts userWithGroupsColumns) does not give. */
const FACTS_BEYOND_USER = ['driftFlaggedAt', 'directoryCreatedAt', 'methods', 'recoveryCodes', 'extensions'] as const

/**
 * The deadline facts of the user `table` names and the live campaigns, as columns of the engine's own read, read back
 * by deadlineFromColumns (the home page's session read has the user's row already: deadlineColumnsBeyondUser).
 */
function deadlineColumns (table: string): string {
  return `${factsColumns(table)}, ${LIVE_CAMPAIGNS_JSON}`
}

/** deadlineColumns' values as the facts and campaigns; undefined when they name no user. */
function deadlineFromColumns (values: readonly unknown[]): DeadlineRead | undefined {
  const facts = factsFromColumns(values)
  if (facts === undefined) return undefined
  return { facts, campaigns: liveCampaignsFrom(values[FACT_NAMES.length]) }
}

/**
 * deadlineColumns for a read that has the user's row with their groups already (the home page's session read): only
 * the facts that row does not give, then the live campaigns. DEADLINE_BEYOND_USER_WIDTH of them, read back with the
 * user's row by deadlineFromUserRow.
 */
export function deadlineColumnsBeyondUser (table: string): string {
  const fields = factsFields(table).filter(([name]) => (FACTS_BEYOND_USER as readonly string[]).includes(name))
  return `${fields.map(([, column]) => column).join(', ')}, ${LIVE_CAMPAIGNS_JSON}`
}

export const DEADLINE_BEYOND_USER_WIDTH = FACTS_BEYOND_USER.length + 1

/** A user's row with their groups and deadlineColumnsBeyondUser's values as the facts and campaigns. */
export function deadlineFromUserRow (user: Readonly<UserWithGroupsRow>, values: readonly unknown[]): DeadlineRead {
  const [id, email, , , , privileged, provider, disabled, enforcedAt, externalId, providerMethods, providerAttributes, , , , firstSeenAt, , groupNames] = user
  const [driftFlaggedAt, directoryCreatedAt, methods, recoveryCodes, extensions, campaigns] = values as [
    SqliteFactsRow['driftFlaggedAt'], SqliteFactsRow['directoryCreatedAt'], SqliteFactsRow['methods'], SqliteFactsRow['recoveryCodes'], SqliteFactsRow['extensions'], unknown
  ]
  const facts = factsOf({
    id, email, provider, externalId, providerMethods, providerAttributes, driftFlaggedAt, privileged, disabled, firstSeenAt, directoryCreatedAt, enforcedAt,
    methods, recoveryCodes, extensions
  }, jsonColumn(groupNames))
  return { facts, campaigns: liveCampaignsFrom(campaigns) }
}

/** LIVE_CAMPAIGNS_JSON's value as the campaigns, newest first, as the campaign store lists them (the read leaves the order to us). */
function liveCampaignsFrom (value: unknown): Campaign[] {
  const campaigns = jsonColumn(value as string | CampaignJson[])
  campaigns.sort((a, b) => b.createdAt - a.createdAt || textOrder(a.id, b.id))
  return campaigns.map(campaignFromJson)
}

/** A user's state as an array, in the order of storedStateColumns. */
export type StoredStateRow = [state: StoredState['state'], deadline: number | null, deadlineVersion: number, desired: JobAction | null, campaignId: string | null, softBlockAt: number | null]

/** The columns of a StoredStateRow, of the user_states table under the name `table` (read with the session, db/sessions.ts). */
export function storedStateColumns (table: string): string {
  return `${table}.state, ${table}.deadline, ${table}.deadline_version, ${table}.desired, ${table}.campaign_id, ${table}.soft_block_at`
}

/** How many columns storedStateColumns names. */
export const STORED_STATE_WIDTH = 6

/** A user_states row (either dialect: times as ms since epoch) as the domain's StoredState. */
export function storedStateFrom (row: Omit<StoredState, 'deadline' | 'softBlockAt'> & { deadline: number | null, softBlockAt: number | null }): StoredState {
  return { ...row, deadline: row.deadline === null ? null : new Date(row.deadline), softBlockAt: row.softBlockAt === null ? null : new Date(row.softBlockAt) }
}

/** A StoredStateRow (SQLite's arrays) as the domain's StoredState. */
export function storedStateFromColumns (row: Readonly<StoredStateRow>): StoredState {
  const [state, deadline, deadlineVersion, desired, campaignId, softBlockAt] = row
  return storedStateFrom({ state, deadline, deadlineVersion, desired, campaignId, softBlockAt })
}

/** The engine's storage: indexed scans in batches, jobs claimed by one conditional UPDATE each. */
export class SqliteEngineStore implements EngineStore {
  private readonly statements

  constructor (private readonly access: SqliteAccess, private readonly campaigns: Pick<CampaignStore, 'list'>) {
    const { sqlite } = access
    const s = (sql: string) => sqlite.prepare(sql)
    this.statements = {
      userIdsFirst: s('SELECT id FROM users ORDER BY id LIMIT ?').pluck(),
      userIdsAfter: s('SELECT id FROM users WHERE id > ? ORDER BY id LIMIT ?').pluck(),
      user: s(`SELECT ${factsColumns('users')} FROM users WHERE id = ?`).raw(true),
      // The same with the live campaigns, for a deadline and policy (the home page reads them with its session instead).
      userWithCampaigns: s(`SELECT ${deadlineColumns('users')} FROM users WHERE id = ?`).raw(true),
      exemption: s(`SELECT kind, expires_at AS expiresAt FROM exemptions WHERE user_id = ? AND revoked_at IS NULL
        ORDER BY CASE kind WHEN 'break_glass' THEN 0 ELSE 1 END, coalesce(expires_at, 9e15) DESC LIMIT 1`),
      state: s(`SELECT ${storedStateColumns('user_states')} FROM user_states WHERE user_id = ?`).raw(true),
      // The user's latest job decides: failed means attention, queued after an error means waiting to retry,
      // until something newer happens.
      latestJob: s(`SELECT action, status, last_error AS lastError, next_attempt_at AS nextAttemptAt FROM enforcement_jobs
        WHERE user_id = ? ORDER BY updated_at DESC, rowid DESC LIMIT 1`),
      upsertState: s(`INSERT INTO user_states (user_id, state, reason, reason_words, deadline, campaign_id, desired, deadline_version, soft_block_at, wave, updated_at)
        VALUES (@userId, @state, @reason, @reasonWords, @deadline, @campaignId, @desired, 0, @softBlockAt, @wave, @now)
        ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, reason_words = excluded.reason_words, campaign_id = excluded.campaign_id, soft_block_at = excluded.soft_block_at, wave = excluded.wave,
          desired = excluded.desired, updated_at = excluded.updated_at,
          deadline_version = deadline_version + (coalesce(deadline, -1) IS NOT coalesce(excluded.deadline, -1) OR coalesce(desired, '') IS NOT coalesce(excluded.desired, '')),
          deadline = excluded.deadline`),
      transition: s('INSERT INTO state_transitions (user_id, from_state, to_state, reason, at) VALUES (?, ?, ?, ?, ?)'),
      // Two index range scans on (desired, deadline, user_id): each batch comes in the index's order, nothing sorted.
      // A job waiting after a provider error (one lookup on the job key each) says when it is tried again.
      // Read in keyset batches (a statement left open between awaits would hold the connection): the relax range
      // by user, then the enforce range by deadline and user.
      dueRelax: s(`SELECT s.user_id AS userId, u.email, s.desired AS action, s.deadline_version AS deadlineVersion, s.campaign_id AS campaignId, s.state, s.deadline, j.next_attempt_at AS retryAt
        FROM user_states s JOIN users u ON u.id = s.user_id ${WAITING_JOB} WHERE s.desired = 'relax' AND s.user_id > @after ORDER BY s.user_id LIMIT @limit`),
      dueEnforce: s(`SELECT s.user_id AS userId, u.email, s.desired AS action, s.deadline_version AS deadlineVersion, s.campaign_id AS campaignId, s.state, s.deadline, j.next_attempt_at AS retryAt
        FROM user_states s JOIN users u ON u.id = s.user_id ${WAITING_JOB} WHERE s.desired = 'enforce' AND s.deadline <= @now AND (s.deadline, s.user_id) > (@deadline, @after)
        ORDER BY s.deadline, s.user_id LIMIT @limit`),
      dueCounts: s(`SELECT 'relax' AS action, campaign_id AS campaignId, count(*) AS count FROM user_states WHERE desired = 'relax' GROUP BY campaign_id
        UNION ALL
        SELECT 'enforce', campaign_id, count(*) FROM user_states WHERE desired = 'enforce' AND deadline <= @now GROUP BY campaign_id`),
      // The same two ranges as \`due\`; "WHERE true" lets SQLite parse the upsert clause after a SELECT.
      enqueueDue: s(`INSERT INTO enforcement_jobs (id, user_id, action, deadline_version, status, attempts, next_attempt_at, created_at, updated_at)
        SELECT lower(hex(randomblob(16))), user_id, desired, deadline_version, 'queued', 0, @now, @now, @now FROM (
          SELECT user_id, desired, deadline_version FROM user_states WHERE desired = 'relax'
          UNION ALL
          SELECT user_id, desired, deadline_version FROM user_states WHERE desired = 'enforce' AND deadline <= @now
        ) WHERE true ON CONFLICT (user_id, action, deadline_version) DO NOTHING`),
      // 'pending' too: a deadline that passed since the state was last derived is refreshed by the sweep itself.
      overdueIn: s(`SELECT s.user_id AS userId, u.email, s.deadline_version AS deadlineVersion, s.state, s.deadline FROM user_states s JOIN users u ON u.id = s.user_id
        WHERE s.campaign_id = @campaignId AND s.deadline <= @now AND s.state IN ('pending', 'enrolled', 'overdue') AND s.user_id > @cursor ORDER BY s.user_id LIMIT @limit`),
      enforced: s("SELECT user_id FROM user_states WHERE state = 'enforced' AND user_id > @cursor ORDER BY user_id LIMIT @limit").pluck(),
      // By primary key, filtering on the campaign: only when a campaign is paused, resumed or starts a wave.
      inCampaign: s('SELECT user_id FROM user_states WHERE campaign_id = @campaignId AND user_id > @cursor ORDER BY user_id LIMIT @limit').pluck(),
      lapsed: s(`SELECT user_id FROM user_states WHERE state IN ('pending', 'enrolled') AND deadline <= @now AND user_id > @cursor ORDER BY user_id LIMIT @limit`).pluck(),
      // Users by primary key, each with one primary-key probe into user_states.
      unassessed: s(`SELECT id FROM users u WHERE id > @cursor AND NOT EXISTS (SELECT 1 FROM user_states s WHERE s.user_id = u.id) ORDER BY id LIMIT @limit`).pluck(),
      // Taking over an expired lease counts as an attempt, and as one that never finished: last_error counts those in
      // a row ('interrupted N'; while it is NULL no attempt ever finished, so all of them). A job that kills its
      // process every time still ends; one waiting out a provider outage (last_error: the provider's words) does not.
      claimOne: s(`UPDATE enforcement_jobs SET attempts = attempts + (status = 'running'), status = 'running', lease_owner = @owner, lease_expires_at = @leaseUntil, updated_at = @now,
          last_error = CASE WHEN status <> 'running' OR last_error IS NULL THEN last_error
            WHEN last_error LIKE 'interrupted %' THEN 'interrupted ' || (CAST(substr(last_error, 13) AS INTEGER) + 1)
            ELSE 'interrupted 1' END
        -- Two index reads, not one OR that gathers and sorts every ready job: expired leases first, then the next due.
        WHERE id = coalesce(
          (SELECT id FROM enforcement_jobs WHERE status = 'running' AND lease_expires_at <= @now ORDER BY lease_expires_at LIMIT 1),
          (SELECT id FROM enforcement_jobs WHERE status = 'queued' AND next_attempt_at <= @now ORDER BY next_attempt_at LIMIT 1))
        AND ((status = 'queued' AND next_attempt_at <= @now) OR (status = 'running' AND lease_expires_at <= @now))
        RETURNING id, user_id AS userId, action, deadline_version AS deadlineVersion, attempts,
          CASE WHEN last_error IS NULL THEN attempts WHEN last_error LIKE 'interrupted %' THEN CAST(substr(last_error, 13) AS INTEGER) ELSE 0 END AS unfinished`),
      complete: s(`UPDATE enforcement_jobs SET status = 'done', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts + 1, last_error = NULL, updated_at = ?
        WHERE id = ? AND lease_owner = ? AND status = 'running'`),
      retry: s(`UPDATE enforcement_jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ?
        WHERE id = ? AND lease_owner = ? AND status = 'running'`),
      fail: s(`UPDATE enforcement_jobs SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts + 1, last_error = ?, updated_at = ?
        WHERE id = ? AND lease_owner = ? AND status = 'running'`),
      setEnforced: s('UPDATE users SET enforced_at = ? WHERE id = ?'),
      setDriftFlagged: s('UPDATE users SET drift_flagged_at = ? WHERE id = ?'),
      supersede: s(`UPDATE enforcement_jobs SET status = 'superseded', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts + 1, updated_at = ?
        WHERE id = ? AND lease_owner = ? AND status = 'running'`),
      markGone: s('UPDATE users SET disabled = 1, enforced_at = NULL, updated_at = ? WHERE id = ?'),
      // Waiting jobs are queued ones that already failed (last_error set) and fall due later: an index range on (status, next_attempt_at).
      retryWaiting: s(`UPDATE enforcement_jobs SET next_attempt_at = @now, updated_at = @now
        WHERE status = 'queued' AND next_attempt_at > @now AND last_error IS NOT NULL AND user_id IN (SELECT id FROM users WHERE provider = @provider)
        RETURNING user_id`).pluck(),
      supersedeFailed: s("UPDATE enforcement_jobs SET status = 'superseded', updated_at = ? WHERE user_id = ? AND status = 'failed'"),
      supersedeFailedIn: s(`UPDATE enforcement_jobs SET status = 'superseded', updated_at = @now
        WHERE status = 'failed' AND user_id IN (SELECT user_id FROM user_states WHERE campaign_id = @campaignId) RETURNING user_id`).pluck(),
      failedAttention: s(`SELECT s.user_id FROM user_states s WHERE s.state = 'attention' AND s.user_id > @cursor
        AND EXISTS (SELECT 1 FROM enforcement_jobs j WHERE j.user_id = s.user_id AND j.status = 'failed') ORDER BY s.user_id LIMIT @limit`).pluck(),
      // One pass over the campaign's users: by state, and whose deadline is still ahead through the new-user window or otherwise.
      outlook: s(`SELECT state, count(*) AS n, sum(windowed) AS inWindow, max(CASE WHEN windowed THEN windowEnds END) AS windowEnds,
          sum(deadline > @now AND NOT windowed) AS ahead, min(CASE WHEN deadline > @now AND NOT windowed THEN deadline END) AS nextAhead
        FROM (SELECT s.state, s.deadline, u.joined + @windowMs AS windowEnds,
            (s.deadline > @now AND u.joined > @startsAt AND u.joined + @windowMs > @deadline) AS windowed
          FROM user_states s
            -- The new-user window counts from the directory's creation date, else from first seen (domain/deadlines.ts joinedAt).
            JOIN (SELECT id, coalesce(directory_created_at, first_seen_at) AS joined FROM users) u ON u.id = s.user_id WHERE s.campaign_id = @campaignId)
        GROUP BY state`)
    }
  }

  async activeCampaigns (): Promise<Campaign[]> {
    return await this.access.run(() => {
      return this.campaigns.list()
    })
  }

  async userIdsAfter (cursor: string | null, limit: number): Promise<string[]> {
    return await this.access.run(() => {
      return (cursor === null ? this.statements.userIdsFirst.all(limit) : this.statements.userIdsAfter.all(cursor, limit)) as string[]
    })
  }

  async facts (userId: string): Promise<UserFacts | undefined> {
    return await this.access.run(() => {
      const facts = this.deadlineFactsNow(userId)
      if (facts === undefined) return undefined
      return { ...facts, exemption: exemptionFrom(this.statements.exemption.get(userId) as ExemptionRow | undefined), trouble: this.trouble(userId) }
    })
  }

  async deadlineFacts (userId: string): Promise<DeadlineFacts | undefined> {
    return await this.access.run(() => this.deadlineFactsNow(userId))
  }

  async deadlineFactsWithCampaigns (userId: string): Promise<DeadlineRead | undefined> {
    return await this.access.run(() => {
      const row = this.statements.userWithCampaigns.get(userId) as unknown[] | undefined
      return row === undefined ? undefined : deadlineFromColumns(row)
    })
  }

  private deadlineFactsNow (userId: string): DeadlineFacts | undefined {
    const row = this.statements.user.get(userId) as unknown[] | undefined
    return row === undefined ? undefined : factsFromColumns(row)
  }

  private trouble (userId: string): JobTrouble | null {
    const job = this.statements.latestJob.get(userId) as { action: JobAction, status: string, lastError: string | null, nextAttemptAt: number } | undefined
    if (job === undefined || job.lastError === null) return null
    if (job.status === 'failed') return { action: job.action, error: job.lastError, retryAt: null }
    if (job.status === 'queued') return { action: job.action, error: job.lastError, retryAt: new Date(job.nextAttemptAt) }
    return null
  }

  async state (userId: string): Promise<StoredState | undefined> {
    return await this.access.run(() => this.stateNow(userId))
  }

  private stateNow (userId: string): StoredState | undefined {
    const row = this.statements.state.get(userId) as StoredStateRow | undefined
    return row === undefined ? undefined : storedStateFromColumns(row)
  }

  async saveState (userId: string, derived: DerivedState, deadline: Date | null, campaignId: string | null, softBlockAt: Date | null, now: Date, wave: number | null = null): Promise<void> {
    return await this.access.run(() => {
      this.access.sqlite.transaction(() => {
        const before = this.stateNow(userId)
        this.statements.upsertState.run({ userId, state: derived.state, reason: derived.reason, reasonWords: encodeWords(derived.words), deadline: deadline?.getTime() ?? null, campaignId, desired: derived.desiredEnforcement, softBlockAt: softBlockAt?.getTime() ?? null, wave, now: now.getTime() })
        if (before?.state !== derived.state) this.statements.transition.run(userId, before?.state ?? null, derived.state, derived.reason, now.getTime())
      }).immediate()
    })
  }

  async * due (now: Date): AsyncIterable<DueRow> {
    for (let after = ''; ;) {
      const rows = await this.access.run(() => this.statements.dueRelax.all({ after, limit: DUE_BATCH }) as DueRecord[])
      yield * rows.map(dueRow)
      if (rows.length < DUE_BATCH) break
      after = rows[rows.length - 1].userId
    }
    for (let deadline = -Infinity, after = ''; ;) {
      const rows = await this.access.run(() => this.statements.dueEnforce.all({ now: now.getTime(), deadline: Number.isFinite(deadline) ? deadline : Number.MIN_SAFE_INTEGER, after, limit: DUE_BATCH }) as DueRecord[])
      yield * rows.map(dueRow)
      if (rows.length < DUE_BATCH) return
      const last = rows[rows.length - 1]
      deadline = last.deadline ?? Number.MIN_SAFE_INTEGER
      after = last.userId
    }
  }

  async overdueInAfter (campaignId: string, cursor: string | null, now: Date, limit: number): Promise<Array<{ userId: string, email: string, deadlineVersion: number, state: UserState, deadline: Date | null }>> {
    return await this.access.run(() => {
      const rows = this.statements.overdueIn.all({ campaignId, cursor: cursor ?? '', now: now.getTime(), limit }) as Array<{ userId: string, email: string, deadlineVersion: number, state: UserState, deadline: number | null }>
      return rows.map((row) => ({ ...row, deadline: row.deadline === null ? null : new Date(row.deadline) }))
    })
  }

  async campaignUserIdsAfter (campaignId: string, cursor: string | null, limit: number): Promise<string[]> {
    return await this.access.run(() => {
      return this.statements.inCampaign.all({ campaignId, cursor: cursor ?? '', limit }) as string[]
    })
  }

  async enforcedAfter (cursor: string | null, limit: number): Promise<string[]> {
    return await this.access.run(() => {
      return this.statements.enforced.all({ cursor: cursor ?? '', limit }) as string[]
    })
  }

  async lapsedAfter (cursor: string | null, now: Date, limit: number): Promise<string[]> {
    return await this.access.run(() => {
      return this.statements.lapsed.all({ cursor: cursor ?? '', now: now.getTime(), limit }) as string[]
    })
  }

  async unassessedAfter (cursor: string | null, limit: number): Promise<string[]> {
    return await this.access.run(() => {
      return this.statements.unassessed.all({ cursor: cursor ?? '', limit }) as string[]
    })
  }

  async dueCounts (now: Date): Promise<Array<{ action: JobAction, campaignId: string | null, count: number }>> {
    return await this.access.run(() => {
      return this.statements.dueCounts.all({ now: now.getTime() }) as Array<{ action: JobAction, campaignId: string | null, count: number }>
    })
  }

  async enqueueDue (now: Date): Promise<number> {
    return await this.access.run(() => {
      return this.statements.enqueueDue.run({ now: now.getTime() }).changes
    })
  }

  async claim (owner: string, limit: number, leaseMs: number, now: Date): Promise<Job[]> {
    return await this.access.run(() => {
      const jobs: Job[] = []
      for (let i = 0; i < limit; i++) {
        const job = this.statements.claimOne.get({ owner, leaseUntil: now.getTime() + leaseMs, now: now.getTime() }) as Job | undefined
        if (job === undefined) break
        jobs.push(job)
      }
      return jobs
    })
  }

  async complete (jobId: string, owner: string, now: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.statements.complete.run(now.getTime(), jobId, owner).changes === 1
    })
  }

  async retryLater (jobId: string, owner: string, error: string, nextAttemptAt: Date, now: Date): Promise<void> {
    return await this.access.run(() => {
      this.statements.retry.run(error, nextAttemptAt.getTime(), now.getTime(), jobId, owner)
    })
  }

  async failForGood (jobId: string, owner: string, error: string, now: Date): Promise<void> {
    return await this.access.run(() => {
      this.statements.fail.run(error, now.getTime(), jobId, owner)
    })
  }

  async atomically<T> (work: () => Promise<T>): Promise<T> {
    return await this.access.transaction(work)
  }

  async setEnforcedAt (userId: string, at: Date | null): Promise<void> {
    return await this.access.run(() => {
      this.statements.setEnforced.run(at?.getTime() ?? null, userId)
    })
  }

  async setDriftFlagged (userId: string, at: Date | null): Promise<void> {
    return await this.access.run(() => {
      this.statements.setDriftFlagged.run(at?.getTime() ?? null, userId)
    })
  }

  async supersede (jobId: string, owner: string, now: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.statements.supersede.run(now.getTime(), jobId, owner).changes === 1
    })
  }

  async markGoneFromDirectory (userId: string, now: Date): Promise<void> {
    return await this.access.run(() => {
      this.statements.markGone.run(now.getTime(), userId)
    })
  }

  async retryWaitingNow (provider: string, now: Date): Promise<string[]> {
    return await this.access.run(() => {
      return this.statements.retryWaiting.all({ provider, now: now.getTime() }) as string[]
    })
  }

  async supersedeFailed (userId: string, now: Date): Promise<number> {
    return await this.access.run(() => {
      return this.statements.supersedeFailed.run(now.getTime(), userId).changes
    })
  }

  async supersedeFailedInCampaign (campaignId: string, now: Date): Promise<string[]> {
    return await this.access.run(() => {
      return this.statements.supersedeFailedIn.all({ campaignId, now: now.getTime() }) as string[]
    })
  }

  async failedAttentionAfter (cursor: string | null, limit: number): Promise<string[]> {
    return await this.access.run(() => {
      return this.statements.failedAttention.all({ cursor: cursor ?? '', limit }) as string[]
    })
  }

  async campaignOutlook (campaign: Campaign, now: Date): Promise<CampaignOutlook> {
    return await this.access.run(() => {
      const rows = this.statements.outlook.all({
        campaignId: campaign.id, now: now.getTime(), startsAt: campaign.startsAt.getTime(), deadline: campaign.deadline.getTime(), windowMs: campaign.newUserWindowDays * DAY_MS
      }) as Array<{ state: UserState, n: number, inWindow: number | null, windowEnds: number | null, ahead: number | null, nextAhead: number | null }>
      const outlook: CampaignOutlook = { byState: {}, inWindow: { count: 0, until: null }, ahead: { count: 0, next: null } }
      for (const row of rows) {
        outlook.byState[row.state] = row.n
        outlook.inWindow.count += row.inWindow ?? 0
        outlook.ahead.count += row.ahead ?? 0
        if (row.windowEnds !== null && (outlook.inWindow.until === null || row.windowEnds > outlook.inWindow.until.getTime())) outlook.inWindow.until = new Date(row.windowEnds)
        if (row.nextAhead !== null && (outlook.ahead.next === null || row.nextAhead < outlook.ahead.next.getTime())) outlook.ahead.next = new Date(row.nextAhead)
      }
      return outlook
    })
  }
}

/** A user's row as the facts read gives it, in either dialect once its driver's types are evened out. */
export interface FactsRow {
  id: string
  email: string
  provider: string
  externalId: string | null
  /** JSON text, or (read packed in a JSON row) already parsed. */
  providerMethods: string | string[]
  providerAttributes: string | { targetable?: boolean }
  driftFlaggedAt: number | null
  privileged: boolean
  disabled: boolean
  firstSeenAt: number
  directoryCreatedAt: number | null
  enforcedAt: number | null
  groups: string[]
  /** The user's portal methods, oldest first. */
  methods: MethodRow[]
  /** Unused recovery codes (any count above 0 makes them count, where the policy lets them). */
  recoveryCodes: number
}

/** factsColumns' values by name, as better-sqlite3 gives them: flags as 0 or 1, the lists as text. */
type SqliteFactsRow = Omit<FactsRow, 'privileged' | 'disabled' | 'groups' | 'methods'> & {
  privileged: number, disabled: number, groups: string | null, methods: string | MethodRow[], extensions: string | Extension[]
}

/** The facts from a row's values (its groups, however the read gave them, as a list). */
function factsOf (row: Omit<SqliteFactsRow, 'groups'>, groups: string[]): DeadlineFacts {
  // Field by field, not `{ ...row, privileged: … }`: a spread followed by more fields gave every call an object of a
  // new hidden class, so each read of its fields in deadlineFactsFrom missed V8's caches (on every home page).
  return deadlineFactsFrom({
    id: row.id,
    email: row.email,
    provider: row.provider,
    externalId: row.externalId,
    providerMethods: row.providerMethods,
    providerAttributes: row.providerAttributes,
    driftFlaggedAt: row.driftFlaggedAt,
    privileged: row.privileged === 1,
    disabled: row.disabled === 1,
    firstSeenAt: row.firstSeenAt,
    directoryCreatedAt: row.directoryCreatedAt,
    enforcedAt: row.enforcedAt,
    groups,
    // Oldest first, ties by id, as the method store lists them (the read leaves the order to us).
    methods: jsonColumn(row.methods).sort((a, b) => a.createdAt - b.createdAt || textOrder(a.id, b.id)),
    recoveryCodes: row.recoveryCodes
  }, jsonColumn(row.extensions))
}

export function deadlineFactsFrom (row: FactsRow, extensions: Extension[]): DeadlineFacts {
  return {
    userId: row.id,
    email: row.email,
    externalId: row.externalId,
    provider: row.provider,
    privileged: row.privileged,
    disabled: row.disabled,
    targetable: jsonColumn(row.providerAttributes).targetable !== false,
    groups: row.groups,
    firstSeenAt: new Date(row.firstSeenAt),
    directoryCreatedAt: row.directoryCreatedAt === null ? null : new Date(row.directoryCreatedAt),
    methodKinds: countingMethods({ provider: row.provider, portalMethods: row.methods.map((m) => m.kind), providerMethods: jsonColumn(row.providerMethods), recoveryCodes: row.recoveryCodes }),
    methods: row.methods.map(toMethod),
    recoveryCodes: row.recoveryCodes,
    extensions,
    enforcedAt: row.enforcedAt === null ? null : new Date(row.enforcedAt),
    driftFlaggedAt: row.driftFlaggedAt === null ? null : new Date(row.driftFlaggedAt)
  }
}

export interface ExemptionRow { kind: ExemptionFact['kind'], expiresAt: number | null }

/** The user's strongest open exemption (the store's query picks it), or null. */
export function exemptionFrom (row: ExemptionRow | undefined): ExemptionFact | null {
  return row === undefined ? null : { kind: row.kind, expiresAt: row.expiresAt === null ? null : new Date(row.expiresAt) }
}
