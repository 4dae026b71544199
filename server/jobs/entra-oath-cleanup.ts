import type { OathCleanupReport } from '../domain/entra-enrollment.ts'
import type { Services } from '../wiring.ts'

/**
 * Removes the Entra hardware OATH tokens of authenticator-app setups that did not end activated (Graph refused to
 * remove them at the time, or the portal stopped midway), so no token holding a user's seed stays in the tenant;
 * forgets setups that ended without one. A failure leaves the entry for the next run. Does nothing without Entra.
 */
export async function cleanupAbandonedEntraOath (services: Services): Promise<OathCleanupReport> {
  const portal = services.entra
  if (portal === undefined) return { deleted: 0, alreadyGone: 0, inUse: 0, failed: 0 }
  return await portal.enrollment.cleanupAbandoned()
}
