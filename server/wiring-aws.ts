import pino from 'pino'
import { SqliteProviderEnrollmentStore } from './db/provider-enrollments.ts'
import { Sealer } from './db/sealing.ts'
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
  const { config, database, clock, audit, regulator, guard, methods, engine } = services
  const log = pino(loggerOptions(config))
  const notifier: AccountNotifier = services.notifier
  const sealer = new Sealer(config.encryptionKey, config.previousEncryptionKeys)
  const aws: AwsPortalServices = {
    virtualMfa: new VirtualMfaEnrollmentService(
      new SqliteProviderEnrollmentStore(database.access, sealer, clock),
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
