import type { Clock } from '../domain/clock.ts'
import type { DashboardStore } from '../domain/dashboard.ts'

/**
 * The burn-down chart's daily point: counts by state, written once per UTC day. Safe to call on every sweep and
 * from several processes: the day is the table's key, so only the first call of a day writes.
 */
export async function recordDailySnapshot (store: Pick<DashboardStore, 'takeSnapshot'>, clock: Clock): Promise<boolean> {
  return store.takeSnapshot(clock.now())
}
