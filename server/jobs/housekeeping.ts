import type { Logger } from 'pino'
import type { Services } from '../wiring.ts'

const EVERY_MS = 10 * 60_000

/** Purges expired sessions and stale throttle rows now and every ten minutes. */
export function startHousekeeping (services: Services, log: Logger): { stop(): void } {
  const run = (): void => {
    try {
      const now = services.clock.now().getTime()
      const sessions = services.sessions.purgeExpired()
      const throttles = services.throttles.purge(now - 24 * 3_600_000)
      if (sessions + throttles > 0) log.debug({ sessions, throttles }, 'housekeeping purged expired rows')
    } catch (err) {
      log.error({ err }, 'housekeeping failed')
    }
  }
  run()
  const timer = setInterval(run, EVERY_MS)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}
