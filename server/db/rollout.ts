import { randomUUID } from 'node:crypto'
import type { BreakerCounts, BreakerSignal } from '../domain/breaker.ts'
import type { CampaignPause, PauseFigures, RolloutStore, WaveProgress } from '../domain/rollout-guard.ts'
import type { UserState } from '../domain/states.ts'
import type { SqliteAccess } from './sqlite-access.ts'

/** The audit actions the breaker counts. */
const FLIPPED = 'enforcement.enforced'
const FAILED = 'enforcement.failed'
const PASS = 'pass.issued'
const RESET = 'methods.reset'
const NOT_ME = 'method.reported_not_me'
// The pass or reset came after the user was flipped (to the second). Looked up only for passes and resets (AND
// stops early), not for every flip in the window.
const FLIPPED_USER = "(SELECT enforced_at FROM users WHERE id = a.subject_user_id) <= (CAST(strftime('%s', a.at) AS INTEGER) + 1) * 1000"


/**
 * The breaker's figures and the campaigns' pauses and wave starts. The figures are one grouped query over the
 * audit log's (action, id) index, from the first event of the window: the window's lower bound is found by a
 * binary search on the id (the log is append-only, so ids and times rise together), never by scanning old rows.
 */
export class SqliteRolloutStore implements RolloutStore {
  private readonly statements

  constructor (private readonly access: SqliteAccess) {
    const { sqlite } = access
    const s = (sql: string) => sqlite.prepare(sql)
    this.statements = {
      idRange: s('SELECT min(id) AS low, max(id) AS high FROM audit_events'),
      atOrAfter: s('SELECT id, at FROM audit_events WHERE id >= ? ORDER BY id LIMIT 1'),
      // Passes and resets count for users already flipped when they were issued (a pass for a first enrollment is no lockout).
      counts: s(`SELECT s.campaign_id AS campaignId,
          sum(a.action = '${FLIPPED}') AS flipped,
          sum(a.action = '${FAILED}' AND json_extract(a.details, '$.action') = 'enforce') AS failures,
          sum(a.action = '${PASS}' AND ${FLIPPED_USER}) AS passes,
          sum(a.action = '${RESET}' AND ${FLIPPED_USER}) AS resets,
          sum(a.action = '${NOT_ME}') AS notMe
        FROM audit_events a JOIN user_states s ON s.user_id = a.subject_user_id
        WHERE a.action IN ('${FLIPPED}', '${FAILED}', '${PASS}', '${RESET}', '${NOT_ME}') AND a.id >= @fromId AND a.at <= @until AND s.campaign_id IS NOT NULL
        GROUP BY s.campaign_id`),
      pause: s(`INSERT INTO campaign_pauses (id, campaign_id, paused_at, signal, figures) SELECT @id, @campaignId, @at, @signal, @figures
        WHERE NOT EXISTS (SELECT 1 FROM campaign_pauses WHERE campaign_id = @campaignId AND resumed_at IS NULL)`),
      // One conditional UPDATE: of two admins resuming at once, one does it.
      resume: s(`UPDATE campaign_pauses SET resumed_at = @at, resumed_by = @by, resume_reason = @reason WHERE campaign_id = @campaignId AND resumed_at IS NULL
        RETURNING id, campaign_id AS campaignId, paused_at AS pausedAt, signal, figures, resumed_at AS resumedAt, resumed_by AS resumedBy, resume_reason AS resumeReason`),
      startWave: s('INSERT INTO campaign_wave_starts (campaign_id, wave, started_at, started_by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING'),
      progress: s(`SELECT wave, state, count(*) AS n, sum(desired = 'enforce' AND deadline <= @now) AS due FROM user_states
        WHERE campaign_id = @campaignId AND wave IS NOT NULL GROUP BY wave, state`)
    }
  }

  async breakerCounts (since: Date, until: Date): Promise<Map<string, BreakerCounts>> {
    return await this.access.run(() => {
      const result = new Map<string, BreakerCounts>()
      const fromId = this.firstIdAtOrAfter(since.toISOString())
      if (fromId === null) return result
      const rows = this.statements.counts.all({ fromId, until: until.toISOString() }) as Array<{ campaignId: string } & Record<keyof BreakerCounts, number | null>>
      for (const row of rows) {
        result.set(row.campaignId, { flipped: row.flipped ?? 0, failures: row.failures ?? 0, passes: row.passes ?? 0, resets: row.resets ?? 0, notMe: row.notMe ?? 0 })
      }
      return result
    })
  }

  /** The first audit id at or after `at` (ISO time), or null when every event is older. */
  private firstIdAtOrAfter (at: string): number | null {
    const { low, high } = this.statements.idRange.get() as { low: number | null, high: number | null }
    if (low === null || high === null) return null
    let lo = low
    let hi = high + 1
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2)
      const row = this.statements.atOrAfter.get(mid) as { id: number, at: string } | undefined
      if (row === undefined || row.at >= at) hi = mid
      else lo = row.id + 1
    }
    return lo > high ? null : lo
  }

  async pause (campaignId: string, at: Date, signal: BreakerSignal, figures: PauseFigures): Promise<CampaignPause | undefined> {
    return await this.access.run(() => {
      const id = randomUUID()
      const inserted = this.statements.pause.run({ id, campaignId, at: at.getTime(), signal, figures: JSON.stringify(figures) }).changes === 1
      return inserted ? { id, campaignId, pausedAt: at, signal, figures, resumedAt: null, resumedBy: null, resumeReason: null } : undefined
    })
  }

  async resume (campaignId: string, at: Date, by: string | null, reason: string): Promise<CampaignPause | undefined> {
    return await this.access.run(() => {
      const row = this.statements.resume.get({ campaignId, at: at.getTime(), by, reason }) as {
        id: string, campaignId: string, pausedAt: number, signal: BreakerSignal, figures: string, resumedAt: number, resumedBy: string | null, resumeReason: string
      } | undefined
      if (row === undefined) return undefined
      return { ...row, pausedAt: new Date(row.pausedAt), resumedAt: new Date(row.resumedAt), figures: JSON.parse(row.figures) as PauseFigures }
    })
  }

  async startWave (campaignId: string, wave: number, at: Date, by: string | null): Promise<boolean> {
    return await this.access.run(() => {
      return this.statements.startWave.run(campaignId, wave, at.getTime(), by).changes === 1
    })
  }

  async waveProgress (campaignId: string, now: Date): Promise<WaveProgress[]> {
    return await this.access.run(() => {
      const byWave = new Map<number, WaveProgress>()
      for (const row of this.statements.progress.all({ campaignId, now: now.getTime() }) as Array<{ wave: number, state: UserState, n: number, due: number | null }>) {
        let entry = byWave.get(row.wave)
        if (entry === undefined) byWave.set(row.wave, entry = { wave: row.wave, byState: {}, due: 0 })
        entry.byState[row.state] = row.n
        entry.due += row.due ?? 0
      }
      return [...byWave.values()].sort((a, b) => a.wave - b.wave)
    })
  }
}
