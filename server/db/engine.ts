import type Sqlite from 'better-sqlite3'
import type { CampaignStore } from '../domain/campaigns.ts'
import type { Campaign, EngineStore, Job, JobAction, StoredState, UserFacts } from '../domain/engine.ts'
import type { Extension } from '../domain/deadlines.ts'
import type { ExemptionFact, DerivedState, UserState } from '../domain/states.ts'

/** The engine's storage: indexed scans in batches, jobs claimed by one conditional UPDATE each. */
export class SqliteEngineStore implements EngineStore {
  private readonly statements

  constructor (private readonly sqlite: Sqlite.Database, private readonly campaigns: Pick<CampaignStore, 'list'>) {
    const s = (sql: string) => sqlite.prepare(sql)
    this.statements = {
      userIdsFirst: s('SELECT id FROM users ORDER BY id LIMIT ?').pluck(),
      userIdsAfter: s('SELECT id FROM users WHERE id > ? ORDER BY id LIMIT ?').pluck(),
      user: s(`SELECT id, email, provider, external_id AS externalId, provider_methods AS providerMethods, provider_attributes AS providerAttributes, drift_flagged_at AS driftFlaggedAt,
        privileged, disabled, first_seen_at AS firstSeenAt, enforced_at AS enforcedAt,
        (SELECT group_concat(group_name, char(31)) FROM user_groups WHERE user_id = users.id) AS groups,
        (SELECT group_concat(DISTINCT kind) FROM auth_methods WHERE user_id = users.id) AS methodKinds FROM users WHERE id = ?`),
      exemption: s(`SELECT kind, expires_at AS expiresAt FROM exemptions WHERE user_id = ? AND revoked_at IS NULL
        ORDER BY CASE kind WHEN 'break_glass' THEN 0 ELSE 1 END, coalesce(expires_at, 9e15) DESC LIMIT 1`),
      extensions: s('SELECT campaign_id AS campaignId, days FROM extensions WHERE user_id = ?'),
      state: s(`SELECT state, deadline, deadline_version AS deadlineVersion, desired, campaign_id AS campaignId, soft_block_at AS softBlockAt
        FROM user_states WHERE user_id = ?`),
      // The user's latest job decides: a failed enforce means attention until something newer happens.
      failedJob: s(`SELECT CASE WHEN status = 'failed' AND action = 'enforce' THEN last_error END FROM enforcement_jobs
        WHERE user_id = ? ORDER BY updated_at DESC, rowid DESC LIMIT 1`).pluck(),
      upsertState: s(`INSERT INTO user_states (user_id, state, reason, deadline, campaign_id, desired, deadline_version, soft_block_at, updated_at)
        VALUES (@userId, @state, @reason, @deadline, @campaignId, @desired, 0, @softBlockAt, @now)
        ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, campaign_id = excluded.campaign_id, soft_block_at = excluded.soft_block_at,
          desired = excluded.desired, updated_at = excluded.updated_at,
          deadline_version = deadline_version + (coalesce(deadline, -1) IS NOT coalesce(excluded.deadline, -1) OR coalesce(desired, '') IS NOT coalesce(excluded.desired, '')),
          deadline = excluded.deadline`),
      transition: s('INSERT INTO state_transitions (user_id, from_state, to_state, reason, at) VALUES (?, ?, ?, ?, ?)'),
      // Two index range scans on (desired, deadline), no ORDER BY: one streaming pass, however many are due.
      due: s(`SELECT s.user_id AS userId, u.email, s.desired AS action, s.deadline_version AS deadlineVersion, s.campaign_id AS campaignId, s.state, s.deadline
        FROM user_states s JOIN users u ON u.id = s.user_id WHERE s.desired = 'relax'
        UNION ALL
        SELECT s.user_id, u.email, s.desired, s.deadline_version, s.campaign_id, s.state, s.deadline
        FROM user_states s JOIN users u ON u.id = s.user_id WHERE s.desired = 'enforce' AND s.deadline <= @now`),
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
      lapsed: s(`SELECT user_id FROM user_states WHERE state IN ('pending', 'enrolled') AND deadline <= @now AND user_id > @cursor ORDER BY user_id LIMIT @limit`).pluck(),
      // Taking over an expired lease counts as an attempt: a job that kills its process every time still ends.
      claimOne: s(`UPDATE enforcement_jobs SET attempts = attempts + (status = 'running'), status = 'running', lease_owner = @owner, lease_expires_at = @leaseUntil, updated_at = @now
        -- Two index reads, not one OR that gathers and sorts every ready job: expired leases first, then the next due.
        WHERE id = coalesce(
          (SELECT id FROM enforcement_jobs WHERE status = 'running' AND lease_expires_at <= @now ORDER BY lease_expires_at LIMIT 1),
          (SELECT id FROM enforcement_jobs WHERE status = 'queued' AND next_attempt_at <= @now ORDER BY next_attempt_at LIMIT 1))
        AND ((status = 'queued' AND next_attempt_at <= @now) OR (status = 'running' AND lease_expires_at <= @now))
        RETURNING id, user_id AS userId, action, deadline_version AS deadlineVersion, attempts`),
      complete: s(`UPDATE enforcement_jobs SET status = 'done', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts + 1, last_error = NULL, updated_at = ?
        WHERE id = ? AND lease_owner = ? AND status = 'running'`),
      retry: s(`UPDATE enforcement_jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ?
        WHERE id = ? AND lease_owner = ? AND status = 'running'`),
      fail: s(`UPDATE enforcement_jobs SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts + 1, last_error = ?, updated_at = ?
        WHERE id = ? AND lease_owner = ? AND status = 'running'`),
      setEnforced: s('UPDATE users SET enforced_at = ? WHERE id = ?'),
      setDriftFlagged: s('UPDATE users SET drift_flagged_at = ? WHERE id = ?')
    }
  }

  activeCampaigns (): Campaign[] {
    return this.campaigns.list()
  }

  userIdsAfter (cursor: string | null, limit: number): string[] {
    return (cursor === null ? this.statements.userIdsFirst.all(limit) : this.statements.userIdsAfter.all(cursor, limit)) as string[]
  }

  facts (userId: string): UserFacts | undefined {
    const row = this.statements.user.get(userId) as {
      id: string, email: string, provider: string, externalId: string | null, providerMethods: string, providerAttributes: string, driftFlaggedAt: number | null,
      privileged: number, disabled: number, firstSeenAt: number, enforcedAt: number | null, groups: string | null, methodKinds: string | null
    } | undefined
    if (row === undefined) return undefined
    const exemption = this.statements.exemption.get(userId) as { kind: ExemptionFact['kind'], expiresAt: number | null } | undefined
    return {
      userId: row.id,
      email: row.email,
      externalId: row.externalId,
      provider: row.provider,
      privileged: row.privileged === 1,
      disabled: row.disabled === 1,
      targetable: (JSON.parse(row.providerAttributes) as { targetable?: boolean }).targetable !== false,
      groups: row.groups === null ? [] : row.groups.split('\u001f'),
      firstSeenAt: new Date(row.firstSeenAt),
      methodKinds: [...new Set([...(row.methodKinds === null ? [] : row.methodKinds.split(',')), ...(JSON.parse(row.providerMethods) as string[])])],
      exemption: exemption === undefined ? null : { kind: exemption.kind, expiresAt: exemption.expiresAt === null ? null : new Date(exemption.expiresAt) },
      extensions: this.statements.extensions.all(userId) as Extension[],
      enforcedAt: row.enforcedAt === null ? null : new Date(row.enforcedAt),
      failedError: (this.statements.failedJob.get(userId) as string | undefined) ?? null,
      driftFlaggedAt: row.driftFlaggedAt === null ? null : new Date(row.driftFlaggedAt)
    }
  }

  state (userId: string): StoredState | undefined {
    const row = this.statements.state.get(userId) as { state: StoredState['state'], deadline: number | null, deadlineVersion: number, desired: JobAction | null, campaignId: string | null, softBlockAt: number | null } | undefined
    return row === undefined
      ? undefined
      : { ...row, deadline: row.deadline === null ? null : new Date(row.deadline), softBlockAt: row.softBlockAt === null ? null : new Date(row.softBlockAt) }
  }

  saveState (userId: string, derived: DerivedState, deadline: Date | null, campaignId: string | null, softBlockAt: Date | null, now: Date): void {
    this.sqlite.transaction(() => {
      const before = this.state(userId)
      this.statements.upsertState.run({ userId, state: derived.state, reason: derived.reason, deadline: deadline?.getTime() ?? null, campaignId, desired: derived.desiredEnforcement, softBlockAt: softBlockAt?.getTime() ?? null, now: now.getTime() })
      if (before?.state !== derived.state) this.statements.transition.run(userId, before?.state ?? null, derived.state, derived.reason, now.getTime())
    }).immediate()
  }

  * due (now: Date): Iterable<{ userId: string, email: string, action: JobAction, deadlineVersion: number, campaignId: string | null, state: UserState, deadline: Date | null }> {
    for (const row of this.statements.due.iterate({ now: now.getTime() }) as Iterable<{ userId: string, email: string, action: JobAction, deadlineVersion: number, campaignId: string | null, state: UserState, deadline: number | null }>) {
      yield { ...row, deadline: row.deadline === null ? null : new Date(row.deadline) }
    }
  }

  overdueInAfter (campaignId: string, cursor: string | null, now: Date, limit: number): Array<{ userId: string, email: string, deadlineVersion: number, state: UserState, deadline: Date | null }> {
    const rows = this.statements.overdueIn.all({ campaignId, cursor: cursor ?? '', now: now.getTime(), limit }) as Array<{ userId: string, email: string, deadlineVersion: number, state: UserState, deadline: number | null }>
    return rows.map((row) => ({ ...row, deadline: row.deadline === null ? null : new Date(row.deadline) }))
  }

  enforcedAfter (cursor: string | null, limit: number): string[] {
    return this.statements.enforced.all({ cursor: cursor ?? '', limit }) as string[]
  }

  lapsedAfter (cursor: string | null, now: Date, limit: number): string[] {
    return this.statements.lapsed.all({ cursor: cursor ?? '', now: now.getTime(), limit }) as string[]
  }

  dueCounts (now: Date): Array<{ action: JobAction, campaignId: string | null, count: number }> {
    return this.statements.dueCounts.all({ now: now.getTime() }) as Array<{ action: JobAction, campaignId: string | null, count: number }>
  }

  enqueueDue (now: Date): number {
    return this.statements.enqueueDue.run({ now: now.getTime() }).changes
  }

  claim (owner: string, limit: number, leaseMs: number, now: Date): Job[] {
    const jobs: Job[] = []
    for (let i = 0; i < limit; i++) {
      const job = this.statements.claimOne.get({ owner, leaseUntil: now.getTime() + leaseMs, now: now.getTime() }) as Job | undefined
      if (job === undefined) break
      jobs.push(job)
    }
    return jobs
  }

  complete (jobId: string, owner: string, now: Date): boolean {
    return this.statements.complete.run(now.getTime(), jobId, owner).changes === 1
  }

  retryLater (jobId: string, owner: string, error: string, nextAttemptAt: Date, now: Date): void {
    this.statements.retry.run(error, nextAttemptAt.getTime(), now.getTime(), jobId, owner)
  }

  failForGood (jobId: string, owner: string, error: string, now: Date): void {
    this.statements.fail.run(error, now.getTime(), jobId, owner)
  }

  atomically<T> (work: () => T): T {
    return this.sqlite.transaction(work).immediate()
  }

  setEnforcedAt (userId: string, at: Date | null): void {
    this.statements.setEnforced.run(at?.getTime() ?? null, userId)
  }

  setDriftFlagged (userId: string, at: Date | null): void {
    this.statements.setDriftFlagged.run(at?.getTime() ?? null, userId)
  }
}
