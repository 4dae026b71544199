import type { Logger } from 'pino'
import type { Services } from '../wiring.ts'
import { recordDailySnapshot } from './snapshots.ts'
import { soleLeader, type Leadership } from '../domain/leadership.ts'

/**
 * Runs the sweep every `intervalMs` (SWEEP_INTERVAL). A run still going when the next is due is not doubled in
 * this process; across processes the job leases keep sweeps from applying anything twice.
 */
export function startScheduler (services: Services, intervalMs: number, log: Logger, leadership: Leadership = soleLeader('this process')): { stop(): Promise<void> } {
  let running: Promise<void> | null = null
  let lastDriftCheck = 0
  const run = (): void => {
    if (running !== null || !leadership.isLeader()) return
    running = (async () => {
      try {
        // Directory syncs and drift checks read every user at the provider: hourly, not every sweep.
        if (Date.now() - lastDriftCheck >= 3_600_000) {
          lastDriftCheck = Date.now()
          for (const provider of Object.values(services.providers)) {
            if (provider.name === 'local') continue
            try {
              const synced = await services.directorySync.sync(provider)
              log.info({ provider: provider.name, seen: synced.seen, created: synced.created, updated: synced.updated, disabled: synced.disabled }, 'directory synced')
            } catch (err) {
              log.error({ err, provider: provider.name }, 'directory sync failed')
            }
          }
          // Recorded for the dashboard, with how many users the provider could not be asked about.
          const drift = await services.driftChecks.run()
          if (drift.drifted > 0) log.warn({ users: drift.drifted }, 'enforcement switched off by hand; re-applying')
          if (drift.unchecked > 0) log.error({ users: drift.unchecked, error: drift.error }, 'drift check incomplete: the provider could not be read for some users')
        }
        // A campaign's SMS sunset re-derives states on its date (new deadlines with grace) before the sweep plans.
        const sunset = await services.smsSunset.run(await services.engine.campaigns())
        if (sunset.applied + sunset.reminders > 0) log.info(sunset, 'SMS sunset: states re-derived or reminders sent')
        const report = await services.engine.sweep()
        const reminders = await services.reminders.send(await services.engine.campaigns())
        // Burn-down chart (admin dashboard): the first run of each UTC day records counts by state.
        if (await recordDailySnapshot(services.dashboard, services.clock)) log.info('daily rollout snapshot recorded')
        if (report.planned + reminders > 0) {
          log.info({ planned: report.planned, completed: report.completed, retried: report.retried, failed: report.failed, reminders }, 'sweep finished')
        }
      } catch (err) {
        log.error({ err }, 'sweep failed')
      } finally {
        running = null
      }
    })()
  }
  const timer = intervalMs > 0 ? setInterval(run, intervalMs) : null
  timer?.unref()
  if (timer !== null) setImmediate(run)
  return {
    stop: async () => {
      if (timer !== null) clearInterval(timer)
      await running
    }
  }
}
