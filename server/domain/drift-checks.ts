import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import type { EnforcementEngine } from './engine.ts'

/** One drift check as the dashboard shows it and the CLI reports it. */
export interface DriftCheckRun {
  startedAt: Date
  finishedAt: Date
  /** Enforced users whose provider answered. */
  checked: number
  /** Of those, found with enforcement switched off by hand. */
  drifted: number
  /** Enforced users the provider could not be asked about (outage, throttling, permissions). */
  unchecked: number
  /** The first provider error met, or why the whole check failed. */
  error: string | null
}

export interface DriftCheckStore {
  record(run: DriftCheckRun): Promise<void>
  latest(): Promise<DriftCheckRun | undefined>
}

/**
 * Drift checks that say how they went (DESIGN.md "Drift"): a check that could not read the provider for some users
 * is not a clean bill of health, so every run is kept (the dashboard shows the last) and audited, and the caller
 * learns how many users went unchecked.
 */
export class DriftCheckService {
  constructor (
    private readonly store: DriftCheckStore,
    private readonly engine: Pick<EnforcementEngine, 'checkDrift'>,
    private readonly audit: AuditLog,
    private readonly clock: Clock
  ) {}

  async run (): Promise<DriftCheckRun & { driftedUserIds: string[] }> {
    const startedAt = this.clock.now()
    let report
    try {
      report = await this.engine.checkDrift()
    } catch (err) {
      const failed = { startedAt, finishedAt: this.clock.now(), checked: 0, drifted: 0, unchecked: 0, error: (err instanceof Error ? err.message : String(err)).slice(0, 500) }
      await this.store.record(failed)
      await this.audit.append({ action: 'enforcement.drift_check_incomplete', actorLabel: 'engine', details: { ...failed, startedAt: startedAt.toISOString(), finishedAt: failed.finishedAt.toISOString() } })
      throw err
    }
    const run: DriftCheckRun = { startedAt, finishedAt: this.clock.now(), checked: report.checked, drifted: report.drifted.length, unchecked: report.unchecked, error: report.firstError }
    await this.store.record(run)
    await this.audit.append({
      action: run.unchecked > 0 ? 'enforcement.drift_check_incomplete' : 'enforcement.drift_checked',
      actorLabel: 'engine',
      details: { checked: run.checked, drifted: run.drifted, unchecked: run.unchecked, error: run.error }
    })
    return { ...run, driftedUserIds: report.drifted }
  }

  async latest (): Promise<DriftCheckRun | undefined> {
    return this.store.latest()
  }
}

/** The outcome in one sentence, for the dashboard and the CLI. */
export function describeDriftCheck (run: DriftCheckRun): string {
  const users = (n: number): string => `${n} user${n === 1 ? '' : 's'}`
  const found = run.drifted === 0 ? 'none had enforcement switched off by hand' : `${users(run.drifted)} had enforcement switched off by hand (re-applied by the next sweep unless the campaign only flags it)`
  if (run.checked === 0 && run.unchecked === 0 && run.error !== null) return `the check failed: ${run.error}`
  const checked = `${users(run.checked)} checked, ${found}`
  if (run.unchecked === 0) return checked
  const unread = `${users(run.unchecked)} could not be checked because the provider could not be read (${run.error ?? 'no reason given'})`
  return run.checked === 0 && run.drifted === 0 ? unread : `${checked}; ${unread}`
}
