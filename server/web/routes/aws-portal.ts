import type { FastifyPluginAsync } from 'fastify'
import type { Services } from '../../wiring.ts'
import { awsPortalServices } from '../../wiring-aws.ts'
import enrollAwsRoutes from './enroll-aws.ts'
import invitationRoutes from './invitations.ts'

/**
 * The portal's AWS IAM pages (issue #7): brokered virtual MFA at /enroll/aws-mfa, the security-key guide at
 * /enroll/aws-security-key, and sign-in invitations (/helpdesk/users/:id/invite, /invite/:token).
 */
const awsPortalRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { virtualMfa, invitations } = awsPortalServices(services)
  await app.register(enrollAwsRoutes, { virtualMfa, awsConfig: services.config.aws, clock: services.clock })
  await app.register(invitationRoutes, { invitations, clock: services.clock })
}

export default awsPortalRoutes
