import { randomUUID } from 'node:crypto'
import { and, eq, gte, isNull, max, min, sql } from 'drizzle-orm'
import type { BreakerCounts, BreakerSignal } from '../../domain/breaker.ts'
import type { CampaignPause, PauseFigures, RolloutStore, WaveProgress } from '../../domain/rollout-guard.ts'
import type { UserState } from '../../domain/states.ts'
import type { PgAccess } from './access.ts'
import { auditEvents, campaignPauses, campaignWaveStarts, userStates } from './schema.ts'

/** The audit actions the breaker counts. */
const FLIPPED = 'enforcement.enforced'
const FAILED = 'enforcement.failed'
const PASS = 'pass.issued'
const RESET = 'methods.reset'
const NOT_ME = 'method.reported_not_me'
// The pass or reset came after the user was flipped (to the second: the audit time's whole seconds, plus one).
// Looked up only for passes and resets (AND stops early), not for every flip in the window.
const FLIPPED_USER = sql`(SELECT enforced_at FROM users WHERE id = a.subject_user_id) <= (floor(extract(epoch FROM a.at::timestamptz)) + 1) * 1000`

/**
 * The breaker's figures and the campaigns' pauses and wave starts. The figures are one grouped query over the
 * audit log's (action, id) index, from the first event of the window: the window's lower bound is found by a
 * binary search on the id (the log is append-only, so ids and times rise together), never by scanning old rows.
 */
export class PgRolloutStore implements RolloutStore {
  constructor (private readonly access: PgAccess) {}

  async breakerCounts (since: Date, until: Date): Promise<Map<string, BreakerCounts>> {
    const result = new Map<string, BreakerCounts>()
    const fromId = await this.firstIdAtOrAfter(since.toISOString())
    if (fromId === null) return result
    // Passes and resets count for users already flipped when they were issued (a pass for a first enrollment is no
    // lockout). Audit times are ISO text: compared byte by byte (COLLATE "C"), as SQLite compares them.
    const { rows } = await this.access.current.execute<{ campaignId: string } & BreakerCounts & Record<string, unknown>>(sql`SELECT s.campaign_id AS "campaignId",
        count(*) FILTER (WHERE a.action = ${FLIPPED})::int AS flipped,
        count(*) FILTER (WHERE a.action = ${FAILED} AND a.details::json ->> 'action' = 'enforce')::int AS failures,
        count(*) FILTER (WHERE a.action = ${PASS} AND ${FLIPPED_USER})::int AS passes,
        count(*) FILTER (WHERE a.action = ${RESET} AND ${FLIPPED_USER})::int AS resets,
        count(*) FILTER (WHERE a.action = ${NOT_ME})::int AS "notMe"
      FROM audit_events a JOIN user_states s ON s.user_id = a.subject_user_id
      WHERE a.action IN (${FLIPPED}, ${FAILED}, ${PASS}, ${RESET}, ${NOT_ME}) AND a.id >= ${fromId} AND a.at COLLATE "C" <= ${until.toISOString()} AND s.campaign_id IS NOT NULL
      GROUP BY s.campaign_id`)
    for (const { campaignId, flipped, failures, passes, resets, notMe } of rows) result.set(campaignId, { flipped, failures, passes, resets, notMe })
    return result
  }

  /** The first audit id at or after `at` (ISO time), or null when every event is older. */
  private async firstIdAtOrAfter (at: string): Promise<number | null> {
    const [{ low, high }] = await this.access.current.select({ low: min(auditEvents.id), high: max(auditEvents.id) }).from(auditEvents)
    if (low === null || high === null) return null
    let lo = low
    let hi = high + 1
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2)
      const [row] = await this.access.current.select({ id: auditEvents.id, at: auditEvents.at }).from(auditEvents).where(gte(auditEvents.id, mid)).orderBy(auditEvents.id).limit(1)
      if (row === undefined || row.at >= at) hi = mid
      else lo = row.id + 1
    }
    return lo > high ? null : lo
  }

  /**
   * Opens a pause unless one is open already. Two instances may trip the breaker at the same moment: a lock per
   * campaign (held to the end of the transaction) lets the second find the first one's pause.
   */
  async pause (campaignId: string, at: Date, signal: BreakerSignal, figures: PauseFigures): Promise<CampaignPause | undefined> {
    const id = randomUUID()
    const inserted = await this.access.transaction(async () => {
      await this.access.current.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${'campaign-pause:' + campaignId}, 0))`)
      const [open] = await this.access.current.select({ id: campaignPauses.id }).from(campaignPauses)
        .where(and(eq(campaignPauses.campaignId, campaignId), isNull(campaignPauses.resumedAt))).limit(1)
      if (open !== undefined) return false
      await this.access.current.insert(campaignPauses).values({ id, campaignId, pausedAt: at.getTime(), signal, figures: JSON.stringify(figures) })
      return true
    })
    return inserted ? { id, campaignId, pausedAt: at, signal, figures, resumedAt: null, resumedBy: null, resumeReason: null } : undefined
  }

  async resume (campaignId: string, at: Date, by: string | null, reason: string): Promise<CampaignPause | undefined> {
    // One conditional UPDATE: of two admins resuming at once, one does it.
    const [row] = await this.access.current.update(campaignPauses).set({ resumedAt: at.getTime(), resumedBy: by, resumeReason: reason })
      .where(and(eq(campaignPauses.campaignId, campaignId), isNull(campaignPauses.resumedAt))).returning()
    if (row === undefined) return undefined
    return { ...row, signal: row.signal as BreakerSignal, pausedAt: new Date(row.pausedAt), resumedAt: at, figures: JSON.parse(row.figures) as PauseFigures }
  }

  async startWave (campaignId: string, wave: number, at: Date, by: string | null): Promise<boolean> {
    const started = await this.access.current.insert(campaignWaveStarts).values({ campaignId, wave, startedAt: at.getTime(), startedBy: by }).onConflictDoNothing()
    return started.rowCount === 1
  }

  async waveProgress (campaignId: string, now: Date): Promise<WaveProgress[]> {
    const rows = await this.access.current.select({
      wave: userStates.wave,
      state: userStates.state,
      n: sql<number>`count(*)::int`,
      due: sql<number>`count(*) FILTER (WHERE ${userStates.desired} = 'enforce' AND ${userStates.deadline} <= ${now.getTime()})::int`
    }).from(userStates).where(and(eq(userStates.campaignId, campaignId), sql`${userStates.wave} IS NOT NULL`)).groupBy(userStates.wave, userStates.state)
    const byWave = new Map<number, WaveProgress>()
    for (const row of rows as Array<{ wave: number, state: UserState, n: number, due: number }>) {
      let entry = byWave.get(row.wave)
      if (entry === undefined) byWave.set(row.wave, entry = { wave: row.wave, byState: {}, due: 0 })
      entry.byState[row.state] = row.n
      entry.due += row.due
    }
    return [...byWave.values()].sort((a, b) => a.wave - b.wave)
  }
}
