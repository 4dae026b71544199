import { sql } from 'drizzle-orm'
import { emptyStateCounts, PORTAL_METHOD_KINDS, utcDay, type AttentionUser, type DashboardStore, type MethodKindCount, type ProviderCount, type RetryingUser, type RolloutSnapshot, type StateListRow } from '../../domain/dashboard.ts'
import { providersWherePortalMethodsCount } from '../../domain/protection.ts'
import { USER_STATES, type UserState } from '../../domain/states.ts'
import type { PgAccess } from './access.ts'

// A waiting job is a queued one that already failed; only the job for the user's current wish counts.
const WAITING_JOBS = sql`enforcement_jobs j JOIN user_states s ON s.user_id = j.user_id AND s.deadline_version = j.deadline_version AND s.desired = j.action`
const WAITING = sql`j.status = 'queued' AND j.last_error IS NOT NULL`

/**
 * The dashboard's counts, each one grouped query: rows are counted inside PostgreSQL and never loaded into the
 * process (counts cast to int: pg hands bigints over as strings).
 */
export class PgDashboardStore implements DashboardStore {
  constructor (private readonly access: PgAccess) {}

  private async rows<T extends Record<string, unknown>> (query: ReturnType<typeof sql>): Promise<T[]> {
    return (await this.access.current.execute<T>(query)).rows as T[]
  }

  async stateCounts (): Promise<{ counts: Record<UserState, number>, unassessed: number }> {
    const counts = emptyStateCounts()
    let assessed = 0
    for (const row of await this.rows<{ state: UserState, n: number }>(sql`SELECT state, count(*)::int AS n FROM user_states GROUP BY state`)) {
      if (!USER_STATES.includes(row.state)) continue
      counts[row.state] = row.n
      assessed += row.n
    }
    const [{ n: users }] = await this.rows<{ n: number }>(sql`SELECT count(*)::int AS n FROM users`)
    return { counts, unassessed: Math.max(0, users - assessed) }
  }

  async methodCounts (): Promise<MethodKindCount[]> {
    const byKind = new Map<string, MethodKindCount>()
    const entry = (kind: string): MethodKindCount => {
      let found = byKind.get(kind)
      if (found === undefined) byKind.set(kind, found = { kind, portalUsers: 0, providerUsers: 0, countingUsers: 0 })
      return found
    }
    // The counting rule (protection.ts) as SQL: portal methods count only for users who sign in to the portal itself.
    const portalSignIn = sql.join(providersWherePortalMethodsCount().map((p) => sql`${p}`), sql`, `)
    // The portal's own kinds are always listed, at zero too; other kinds only when a provider reports them.
    for (const kind of PORTAL_METHOD_KINDS) entry(kind)
    for (const row of await this.rows<{ kind: string, n: number }>(sql`SELECT kind, count(DISTINCT user_id)::int AS n FROM auth_methods GROUP BY kind`)) entry(row.kind).portalUsers = row.n
    // provider_methods is a JSON array per user; '[]' (nothing reported) is skipped before it is unpacked.
    for (const row of await this.rows<{ kind: string, n: number }>(sql`SELECT j.kind, count(DISTINCT u.id)::int AS n
        FROM users u CROSS JOIN LATERAL jsonb_array_elements_text(u.provider_methods::jsonb) AS j(kind)
        WHERE u.provider_methods <> '[]' GROUP BY j.kind`)) entry(row.kind).providerUsers = row.n
    for (const row of await this.rows<{ kind: string, n: number }>(sql`SELECT kind, count(*)::int AS n FROM (
          SELECT m.user_id, m.kind FROM auth_methods m JOIN users u ON u.id = m.user_id WHERE u.provider IN (${portalSignIn})
          UNION
          SELECT u.id, j.kind FROM users u CROSS JOIN LATERAL jsonb_array_elements_text(u.provider_methods::jsonb) AS j(kind) WHERE u.provider_methods <> '[]'
        ) AS holdings GROUP BY kind`)) entry(row.kind).countingUsers = row.n
    return [...byKind.values()]
  }

  async providerCounts (): Promise<ProviderCount[]> {
    const byProvider = new Map<string, ProviderCount>()
    for (const row of await this.rows<{ provider: string, state: UserState | null, n: number }>(sql`SELECT u.provider, s.state, count(*)::int AS n
        FROM users u LEFT JOIN user_states s ON s.user_id = u.id GROUP BY u.provider, s.state ORDER BY u.provider`)) {
      let entry = byProvider.get(row.provider)
      if (entry === undefined) byProvider.set(row.provider, entry = { provider: row.provider, total: 0, byState: emptyStateCounts() })
      entry.total += row.n
      if (row.state !== null && USER_STATES.includes(row.state)) entry.byState[row.state] += row.n
    }
    return [...byProvider.values()]
  }

  // In the order users were first assessed in: user_states.seq stands for SQLite's rowid.
  async attention (limit: number): Promise<AttentionUser[]> {
    return await this.rows<AttentionUser & Record<string, unknown>>(sql`SELECT s.user_id AS "userId", u.email, s.reason, s.reason_words AS "reasonWords",
        u.drift_flagged_at IS NOT NULL AS "driftFlagged",
        EXISTS (SELECT 1 FROM enforcement_jobs j WHERE j.user_id = s.user_id AND j.status = 'failed') AS failed
      FROM user_states s JOIN users u ON u.id = s.user_id WHERE s.state = 'attention' ORDER BY s.seq LIMIT ${limit}`)
  }

  async retrying (limit: number): Promise<{ total: number, first: RetryingUser[] }> {
    const rows = await this.rows<Omit<RetryingUser, 'nextAttemptAt'> & { nextAttemptAt: string }>(sql`SELECT j.user_id AS "userId", u.email, u.provider, j.action, j.attempts,
        j.next_attempt_at AS "nextAttemptAt", j.last_error AS "lastError"
      FROM ${WAITING_JOBS} JOIN users u ON u.id = j.user_id WHERE ${WAITING} ORDER BY j.next_attempt_at LIMIT ${limit}`)
    const [{ n: total }] = await this.rows<{ n: number }>(sql`SELECT count(*)::int AS n FROM ${WAITING_JOBS} WHERE ${WAITING}`)
    return { total, first: rows.map((row) => ({ ...row, nextAttemptAt: new Date(Number(row.nextAttemptAt)) })) }
  }

  /** Keyset pages on user_states.seq (SQLite's rowid), which the (state, seq) index carries: a page is an index range read. */
  async usersInState (state: UserState, after: number | null, limit: number): Promise<StateListRow[]> {
    const rows = await this.rows<Omit<StateListRow, 'cursor' | 'deadline'> & { cursor: string, deadline: string | null }>(sql`SELECT s.seq AS cursor,
        s.user_id AS "userId", u.email, u.provider, s.reason, s.reason_words AS "reasonWords", s.deadline
      FROM user_states s JOIN users u ON u.id = s.user_id WHERE s.state = ${state} AND s.seq > ${after ?? 0} ORDER BY s.seq LIMIT ${limit}`)
    return rows.map((row) => ({ ...row, cursor: Number(row.cursor), deadline: row.deadline === null ? null : new Date(Number(row.deadline)) }))
  }

  async snapshots (fromDay: string): Promise<RolloutSnapshot[]> {
    return (await this.rows<{ day: string, counts: string }>(sql`SELECT day, counts FROM rollout_snapshots WHERE day >= ${fromDay} ORDER BY day`))
      .map((row) => ({ day: row.day, counts: JSON.parse(row.counts) as RolloutSnapshot['counts'] }))
  }

  /**
   * One statement for the day's counts: counting and writing happen in the same instant, and a second run the same
   * day changes nothing. With no states yet the counts are {} (json_object_agg of no rows is null).
   */
  async takeSnapshot (now: Date): Promise<boolean> {
    const day = utcDay(now)
    const taken = await this.access.current.execute(sql`INSERT INTO rollout_snapshots (day, taken_at, counts)
      SELECT ${day}, ${now.getTime()}, coalesce(jsonb_object_agg(state, n), '{}')::text FROM (SELECT state, count(*) AS n FROM user_states GROUP BY state) AS by_state
      ON CONFLICT (day) DO NOTHING`)
    // The same per wave of each campaign in waves (user_states.wave is null for everyone else).
    await this.access.current.execute(sql`INSERT INTO wave_snapshots (day, campaign_id, wave, taken_at, counts)
      SELECT ${day}, campaign_id, wave, ${now.getTime()}, jsonb_object_agg(state, n)::text FROM (
        SELECT campaign_id, wave, state, count(*) AS n FROM user_states WHERE wave IS NOT NULL GROUP BY campaign_id, wave, state) AS by_wave
      GROUP BY campaign_id, wave ON CONFLICT DO NOTHING`)
    return taken.rowCount === 1
  }

  async waveSnapshots (campaignId: string, fromDay: string): Promise<Map<number, RolloutSnapshot[]>> {
    const byWave = new Map<number, RolloutSnapshot[]>()
    for (const row of await this.rows<{ wave: number, day: string, counts: string }>(sql`SELECT wave, day, counts FROM wave_snapshots WHERE campaign_id = ${campaignId} AND day >= ${fromDay} ORDER BY wave, day`)) {
      const list = byWave.get(row.wave) ?? []
      list.push({ day: row.day, counts: JSON.parse(row.counts) as RolloutSnapshot['counts'] })
      byWave.set(row.wave, list)
    }
    return byWave
  }
}
