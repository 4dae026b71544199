import type { Logger } from 'pino'
import type { Services } from '../wiring.ts'

const EVERY_MS = 10 * 60_000

/** Purges expired sessions, throttles, pending setups and WebAuthn challenges now and every ten minutes. */
export function startHousekeeping (services: Services, log: Logger): { stop(): void } {
  const run = (): void => {
    try {
      const now = services.clock.now()
      const purged = {
        sessions: services.sessions.purgeExpired(),
        throttles: services.throttles.purge(now.getTime() - 24 * 3_600_000),
        pending: services.pending.purgeExpired(now),
        challenges: services.challenges.purge(now)
      }
      if (Object.values(purged).some((n) => n > 0)) log.debug(purged, 'housekeeping purged expired rows')
    } catch (err) {
      log.error({ err }, 'housekeeping failed')
    }
  }
  run()
  const timer = setInterval(run, EVERY_MS)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}
