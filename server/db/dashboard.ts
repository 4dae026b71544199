import { emptyStateCounts, PORTAL_METHOD_KINDS, utcDay, type AttentionUser, type DashboardStore, type MethodKindCount, type ProviderCount, type RetryingUser, type RolloutSnapshot, type StateListRow } from '../domain/dashboard.ts'
import { providersWherePortalMethodsCount } from '../domain/protection.ts'
import { USER_STATES, type UserState } from '../domain/states.ts'
import type { SqliteAccess } from './sqlite-access.ts'

/**
 * The dashboard's counts, each one grouped query: rows are counted inside SQLite and never loaded into the process.
 * Lists are keyset pages on user_states' rowid, which the (state) index carries, so a page is an index range read.
 */
export class SqliteDashboardStore implements DashboardStore {
  private readonly statements

  constructor (private readonly access: SqliteAccess) {
    const { sqlite } = access
    const s = (sql: string) => sqlite.prepare(sql)
    // The counting rule (protection.ts) as SQL: portal methods count only for users who sign in to the portal itself.
    const portalSignIn = providersWherePortalMethodsCount().map((p) => `'${p.replace(/'/g, "''")}'`).join(', ')
    // A waiting job is a queued one that already failed; only the job for the user's current wish counts.
    const waitingJobs = `enforcement_jobs j JOIN user_states s ON s.user_id = j.user_id AND s.deadline_version = j.deadline_version AND s.desired = j.action`
    const waiting = "j.status = 'queued' AND j.last_error IS NOT NULL"
    this.statements = {
      byState: s('SELECT state, count(*) AS n FROM user_states GROUP BY state'),
      users: s('SELECT count(*) FROM users').pluck(),
      portalMethods: s('SELECT kind, count(DISTINCT user_id) AS n FROM auth_methods GROUP BY kind'),
      // provider_methods is a JSON array per user; '[]' (nothing reported) is skipped before json_each runs.
      providerMethods: s(`SELECT j.value AS kind, count(DISTINCT u.id) AS n FROM users u, json_each(u.provider_methods) j
        WHERE u.provider_methods <> '[]' GROUP BY j.value`),
      countingMethods: s(`SELECT kind, count(*) AS n FROM (
          SELECT m.user_id, m.kind FROM auth_methods m JOIN users u ON u.id = m.user_id WHERE u.provider IN (${portalSignIn})
          UNION
          SELECT u.id, j.value FROM users u, json_each(u.provider_methods) j WHERE u.provider_methods <> '[]'
        ) GROUP BY kind`),
      byProvider: s(`SELECT u.provider, s.state, count(*) AS n FROM users u LEFT JOIN user_states s ON s.user_id = u.id
        GROUP BY u.provider, s.state ORDER BY u.provider`),
      attention: s(`SELECT s.user_id AS userId, u.email, s.reason, s.reason_words AS reasonWords, u.drift_flagged_at IS NOT NULL AS driftFlagged,
          EXISTS (SELECT 1 FROM enforcement_jobs j WHERE j.user_id = s.user_id AND j.status = 'failed') AS failed
        FROM user_states s JOIN users u ON u.id = s.user_id WHERE s.state = 'attention' ORDER BY s.rowid LIMIT ?`),
      retryingCount: s(`SELECT count(*) FROM ${waitingJobs} WHERE ${waiting}`).pluck(),
      retrying: s(`SELECT j.user_id AS userId, u.email, u.provider, j.action, j.attempts, j.next_attempt_at AS nextAttemptAt, j.last_error AS lastError
        FROM ${waitingJobs} JOIN users u ON u.id = j.user_id WHERE ${waiting} ORDER BY j.next_attempt_at LIMIT ?`),
      inState: s(`SELECT s.rowid AS cursor, s.user_id AS userId, u.email, u.provider, s.reason, s.reason_words AS reasonWords, s.deadline
        FROM user_states s JOIN users u ON u.id = s.user_id WHERE s.state = @state AND s.rowid > @after ORDER BY s.rowid LIMIT @limit`),
      snapshots: s('SELECT day, counts FROM rollout_snapshots WHERE day >= ? ORDER BY day'),
      // One statement: counting and writing happen in the same instant, and a second run the same day changes nothing.
      snapshot: s(`INSERT INTO rollout_snapshots (day, taken_at, counts)
        SELECT @day, @now, json_group_object(state, n) FROM (SELECT state, count(*) AS n FROM user_states GROUP BY state)
        WHERE true ON CONFLICT (day) DO NOTHING`),
      // The same per wave of each campaign in waves (user_states.wave is null for everyone else).
      waveSnapshot: s(`INSERT INTO wave_snapshots (day, campaign_id, wave, taken_at, counts)
        SELECT @day, campaign_id, wave, @now, json_group_object(state, n) FROM (
          SELECT campaign_id, wave, state, count(*) AS n FROM user_states WHERE wave IS NOT NULL GROUP BY campaign_id, wave, state)
        GROUP BY campaign_id, wave ON CONFLICT DO NOTHING`),
      waveSnapshots: s('SELECT wave, day, counts FROM wave_snapshots WHERE campaign_id = ? AND day >= ? ORDER BY wave, day')
    }
  }

  async stateCounts (): Promise<{ counts: Record<UserState, number>, unassessed: number }> {
    return await this.access.run(() => {
      const counts = emptyStateCounts()
      let assessed = 0
      for (const row of this.statements.byState.all() as Array<{ state: UserState, n: number }>) {
        if (!USER_STATES.includes(row.state)) continue
        counts[row.state] = row.n
        assessed += row.n
      }
      return { counts, unassessed: Math.max(0, (this.statements.users.get() as number) - assessed) }
    })
  }

  async methodCounts (): Promise<MethodKindCount[]> {
    return await this.access.run(() => {
      const byKind = new Map<string, MethodKindCount>()
      const entry = (kind: string): MethodKindCount => {
        let found = byKind.get(kind)
        if (found === undefined) byKind.set(kind, found = { kind, portalUsers: 0, providerUsers: 0, countingUsers: 0 })
        return found
      }
      // The portal's own kinds are always listed, at zero too; other kinds only when a provider reports them.
      for (const kind of PORTAL_METHOD_KINDS) entry(kind)
      for (const row of this.statements.portalMethods.all() as Array<{ kind: string, n: number }>) entry(row.kind).portalUsers = row.n
      for (const row of this.statements.providerMethods.all() as Array<{ kind: string, n: number }>) entry(String(row.kind)).providerUsers = row.n
      for (const row of this.statements.countingMethods.all() as Array<{ kind: string, n: number }>) entry(String(row.kind)).countingUsers = row.n
      return [...byKind.values()]
    })
  }

  async providerCounts (): Promise<ProviderCount[]> {
    return await this.access.run(() => {
      const byProvider = new Map<string, ProviderCount>()
      for (const row of this.statements.byProvider.all() as Array<{ provider: string, state: UserState | null, n: number }>) {
        let entry = byProvider.get(row.provider)
        if (entry === undefined) byProvider.set(row.provider, entry = { provider: row.provider, total: 0, byState: emptyStateCounts() })
        entry.total += row.n
        if (row.state !== null && USER_STATES.includes(row.state)) entry.byState[row.state] += row.n
      }
      return [...byProvider.values()]
    })
  }

  async attention (limit: number): Promise<AttentionUser[]> {
    return await this.access.run(() => {
      return (this.statements.attention.all(limit) as Array<Omit<AttentionUser, 'driftFlagged' | 'failed'> & { driftFlagged: number, failed: number }>)
        .map((row) => ({ ...row, driftFlagged: row.driftFlagged === 1, failed: row.failed === 1 }))
    })
  }

  async retrying (limit: number): Promise<{ total: number, first: RetryingUser[] }> {
    return await this.access.run(() => {
      const rows = this.statements.retrying.all(limit) as Array<Omit<RetryingUser, 'nextAttemptAt'> & { nextAttemptAt: number }>
      return { total: this.statements.retryingCount.get() as number, first: rows.map((row) => ({ ...row, nextAttemptAt: new Date(row.nextAttemptAt) })) }
    })
  }

  async usersInState (state: UserState, after: number | null, limit: number): Promise<StateListRow[]> {
    return await this.access.run(() => {
      const rows = this.statements.inState.all({ state, after: after ?? 0, limit }) as Array<Omit<StateListRow, 'deadline'> & { deadline: number | null }>
      return rows.map((row) => ({ ...row, deadline: row.deadline === null ? null : new Date(row.deadline) }))
    })
  }

  async snapshots (fromDay: string): Promise<RolloutSnapshot[]> {
    return await this.access.run(() => {
      return (this.statements.snapshots.all(fromDay) as Array<{ day: string, counts: string }>)
        .map((row) => ({ day: row.day, counts: JSON.parse(row.counts) as RolloutSnapshot['counts'] }))
    })
  }

  async takeSnapshot (now: Date): Promise<boolean> {
    return await this.access.run(() => {
      const taken = this.statements.snapshot.run({ day: utcDay(now), now: now.getTime() }).changes === 1
      this.statements.waveSnapshot.run({ day: utcDay(now), now: now.getTime() })
      return taken
    })
  }

  async waveSnapshots (campaignId: string, fromDay: string): Promise<Map<number, RolloutSnapshot[]>> {
    return await this.access.run(() => {
      const byWave = new Map<number, RolloutSnapshot[]>()
      for (const row of this.statements.waveSnapshots.all(campaignId, fromDay) as Array<{ wave: number, day: string, counts: string }>) {
        const list = byWave.get(row.wave) ?? []
        list.push({ day: row.day, counts: JSON.parse(row.counts) as RolloutSnapshot['counts'] })
        byWave.set(row.wave, list)
      }
      return byWave
    })
  }
}
