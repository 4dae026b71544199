import type { Logger } from 'pino'
import type { Services } from '../wiring.ts'
import { cleanupAbandonedAwsMfa } from './aws-mfa-cleanup.ts'
import { soleLeader, type Leadership } from '../domain/leadership.ts'
import { cleanupAbandonedEntraOath } from './entra-oath-cleanup.ts'

const EVERY_MS = 10 * 60_000

/**
 * Purges expired sessions, throttles, pending setups and WebAuthn challenges now and every ten minutes, and lapses
 * two-person-rule requests whose time is up (audited, so the log says when a request lapsed, not when it was next looked at).
 */
export function startHousekeeping (services: Services, log: Logger, leadership: Leadership = soleLeader('this process')): { stop(): void } {
  if (leadership.isLeader()) void runHousekeeping(services, log)
  const timer = setInterval(() => { if (leadership.isLeader()) void runHousekeeping(services, log) }, EVERY_MS)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}

/** One round of housekeeping; failures are logged, never thrown. */
export async function runHousekeeping (services: Services, log: Logger): Promise<void> {
  try {
    const now = services.clock.now()
    const purged = {
      sessions: await services.sessions.purgeExpired(),
      throttles: await services.throttles.purge(now.getTime() - 24 * 3_600_000),
      pending: await services.pending.purgeExpired(now),
      challenges: await services.challenges.purge(now),
      lapsedApprovals: await services.approvals.expireDue()
    }
    // At least hourly, the audit chain's head leaves the database (when new events arrived).
    services.auditAnchors.anchorIfDue(await services.audit.head())
    if (Object.values(purged).some((n) => n > 0)) log.debug(purged, 'housekeeping purged expired rows')
  } catch (err) {
    log.error({ err }, 'housekeeping failed')
  }
  // AWS: devices of abandoned virtual MFA setups are deleted at IAM (asynchronous; its own error handling).
  cleanupAbandonedAwsMfa(services).then((report) => {
    if (report.deleted + report.alreadyGone + report.inUse + report.failed > 0) log.info(report, 'abandoned AWS virtual MFA devices cleaned up')
  }, (err: unknown) => { log.error({ err }, 'AWS virtual MFA cleanup failed') })
  // Entra: hardware OATH tokens of setups that did not end activated are removed from the tenant.
  cleanupAbandonedEntraOath(services).then((report) => {
    if (report.deleted + report.inUse > 0) log.info(report, 'Entra hardware OATH tokens of unfinished setups cleaned up')
    if (report.failed > 0) log.warn(report, 'Entra hardware OATH tokens of unfinished setups could not all be removed; tried again at the next run')
  }, (err: unknown) => { log.error({ err }, 'Entra hardware OATH cleanup failed') })
}
