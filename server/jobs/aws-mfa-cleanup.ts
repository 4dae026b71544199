import type { CleanupReport } from '../domain/virtual-mfa-enrollment.ts'
import { awsPortalServices } from '../wiring-aws.ts'
import type { Services } from '../wiring.ts'

/**
 * Deletes the AWS virtual MFA devices of setups that were started in the portal and never finished (after
 * AWS_IAM_PENDING_MFA_MINUTES), and forgets their rows. An IAM failure leaves the row for the next run; a device
 * enabled meanwhile is left alone. Does nothing when AWS is not configured.
 */
export async function cleanupAbandonedAwsMfa (services: Services): Promise<CleanupReport> {
  if (services.providers.aws === undefined) return { deleted: 0, alreadyGone: 0, inUse: 0, failed: 0 }
  return awsPortalServices(services).virtualMfa.cleanupAbandoned()
}
