import type { Logger } from 'pino'
import type { Services } from '../wiring.ts'
import { cleanupAbandonedAwsMfa } from './aws-mfa-cleanup.ts'

const EVERY_MS = 10 * 60_000

/**
 * Purges expired sessions, throttles, pending setups and WebAuthn challenges now and every ten minutes, and lapses
 * two-person-rule requests whose time is up (audited, so the log says when a request lapsed, not when it was next looked at).
 */
export function startHousekeeping (services: Services, log: Logger): { stop(): void } {
  const run = (): void => {
    try {
      const now = services.clock.now()
      const purged = {
        sessions: services.sessions.purgeExpired(),
        throttles: services.throttles.purge(now.getTime() - 24 * 3_600_000),
        pending: services.pending.purgeExpired(now),
        challenges: services.challenges.purge(now),
        lapsedApprovals: services.approvals.expireDue()
      }
      if (Object.values(purged).some((n) => n > 0)) log.debug(purged, 'housekeeping purged expired rows')
    } catch (err) {
      log.error({ err }, 'housekeeping failed')
    }
    // AWS: devices of abandoned virtual MFA setups are deleted at IAM (asynchronous; its own error handling).
    cleanupAbandonedAwsMfa(services).then((report) => {
      if (report.deleted + report.alreadyGone + report.inUse + report.failed > 0) log.info(report, 'abandoned AWS virtual MFA devices cleaned up')
    }, (err: unknown) => { log.error({ err }, 'AWS virtual MFA cleanup failed') })
  }
  run()
  const timer = setInterval(run, EVERY_MS)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}
