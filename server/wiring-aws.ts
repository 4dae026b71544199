import pino from 'pino'
import type { InvitationService } from './domain/invitations.ts'
import type { AccountNotifier } from './domain/notifications.ts'
import { VirtualMfaEnrollmentService, type VirtualMfaProvider } from './domain/virtual-mfa-enrollment.ts'
import { loggerOptions } from './logging.ts'
import type { Services } from './wiring.ts'

/** The AWS portal pages' services: brokered virtual MFA, the security-key check, sign-in invitations. */
export interface AwsPortalServices {
  virtualMfa: VirtualMfaEnrollmentService
  invitations: InvitationService
}

const built = new WeakMap<Services, AwsPortalServices>()

/**
 * Built once per Services from the shared ones (the routes, the housekeeping job and the CLI share them), beside
 * wiring.ts like wiring-automation.ts, so routes never import db/ themselves.
 */
export function awsPortalServices (services: Services): AwsPortalServices {
  const existing = built.get(services)
  if (existing !== undefined) return existing
  const { config, clock, audit, regulator, guard, methods, engine } = services
  const log = pino(loggerOptions(config))
  const notifier: AccountNotifier = services.notifier
  const aws: AwsPortalServices = {
    virtualMfa: new VirtualMfaEnrollmentService(
      services.stores.providerEnrollments,
      // The AWS adapter (AwsIamProvider) implements the port; looked up on use, so tests may swap providers.
      () => {
        const provider = services.providers.aws
        return provider !== undefined && 'beginVirtualMfa' in provider ? provider as unknown as VirtualMfaProvider : undefined
      },
      methods, regulator, guard, audit, notifier, engine, clock, log
    ),
    // Built with the helpdesk in wiring.ts: invitations for privileged accounts go through the two-person rule.
    invitations: services.invitations
  }
  built.set(services, aws)
  return aws
}
