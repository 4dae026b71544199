import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Clock } from '../../domain/clock.ts'
import { DomainError } from '../../domain/errors.ts'
import type { InvitationService } from '../../domain/invitations.ts'
import { requireRole } from '../plugins/auth.ts'
import { sendError, statusFor, wantsJson } from '../plugins/errors.ts'
import { requestContext } from './auth.ts'
import { pendingJson, requestedFlash, staffActor } from './helpdesk.ts'
import { MASKED_TOKEN_MAX_LENGTH } from '../masked-token.ts'

const UserParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const InviteBody = Type.Object({ reason: Type.String({ maxLength: 1000 }), _csrf: Type.Optional(Type.String({ maxLength: MASKED_TOKEN_MAX_LENGTH })) })
const TokenParams = Type.Object({ token: Type.String({ maxLength: 200 }) })
const CsrfBody = Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: MASKED_TOKEN_MAX_LENGTH })) })

/** Statuses for the invitation codes (the rest go through the shared table in plugins/errors.ts). */
const STATUS: Record<string, number> = { invitation_not_found: 404, invitation_used: 410, invitation_expired: 410, no_email_address: 409, no_mail_relay: 409, user_disabled: 409, invitation_not_sent: 502 }
const statusOf = (err: DomainError): number => STATUS[err.code] ?? statusFor(err)

/**
 * Sign-in invitations: the helpdesk e-mails one (POST /helpdesk/users/:id/invite), the person opens the link
 * (GET /invite/:token shows a button and changes nothing, since mail scanners prefetch links) and uses it
 * (POST /invite/:token), which opens a restricted enrollment session like a temporary access pass.
 */
const invitationRoutes: FastifyPluginAsync<{ invitations: InvitationService, clock: Clock }> = async (app, { invitations, clock }) => {
  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof InviteBody> }>('/helpdesk/users/:id/invite', {
    preValidation: requireRole('helpdesk'),
    schema: { params: UserParams, body: InviteBody },
    // Like every helpdesk action: a recent step-up first (plugins/step-up-actions.ts).
    config: { stepUp: 'stepup.action.send_invitation' }
  }, async (request, reply) => {
    const here = `/helpdesk/users/${encodeURIComponent(request.params.id)}`
    try {
      const sent = await invitations.issue(request.params.id, request.body.reason, staffActor(request))
      // A privileged account's invitation is a request a second administrator approves (two-person rule).
      if ('pendingApproval' in sent) {
        return wantsJson(request) ? reply.code(202).send(pendingJson(sent)) : reply.flashRedirect(here, requestedFlash(sent, request.i18n), 'info')
      }
      return reply.flashRedirect(here, request.i18n.t('invite.sent', { email: sent.sentTo, expires: request.i18n.dateTime(sent.expiresAt) }))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      if (err.code === 'user_not_found') return sendError(request, reply, 404, err.code, { key: 'invite.no_such_user' })
      if (err.code === 'forbidden' || err.code === 'self_action') return sendError(request, reply, 403, err.code, err)
      return reply.flashRedirect(here, request.i18n.error(err), 'error')
    }
  })

  // The token is in the path: these routes log only warnings and errors, so it does not land in request logs.
  // Open to any session, including a half-finished sign-in or another pass session: using the link starts a new one.
  const tokenRoute = {
    schema: { params: TokenParams },
    logLevel: 'warn' as const,
    config: { passSession: true as const, secondFactor: true as const, rateLimit: { max: 30, timeWindow: '1 minute' } }
  }

  app.get<{ Params: Static<typeof TokenParams> }>('/invite/:token', tokenRoute, async (request, reply) => {
    // The token is in this page's address: same-origin keeps it out of the Referer of any other site (as the
    // portal's default does) while the form still posts with the portal's Origin, which browsers without
    // Sec-Fetch-Site need to pass the Origin check (no-referrer would make them send "Origin: null").
    reply.header('cache-control', 'no-store').header('referrer-policy', 'same-origin')
    try {
      const { user, expiresAt } = await invitations.preview(request.params.token)
      return reply.page('invite', {
        title: request.i18n.t('invite.title'),
        name: user.displayName,
        action: `/invite/${encodeURIComponent(request.params.token)}`,
        expires: expiresAt,
        signedInAs: request.user !== null && request.user.id !== user.id ? request.user.email : null
      })
    } catch (err) {
      return invalid(request, reply, err)
    }
  })

  app.post<{ Params: Static<typeof TokenParams>, Body: Static<typeof CsrfBody> }>('/invite/:token', { ...tokenRoute, schema: { params: TokenParams, body: CsrfBody } }, async (request, reply) => {
    try {
      const { user, sessionUntil } = await invitations.redeem(request.params.token, requestContext(request))
      // A new session id, as at every sign-in; the session is restricted to enrollment like a pass session, and
      // ends like one.
      await request.session.regenerate()
      const now = clock.now().getTime()
      request.session.auth = { userId: user.id, createdAt: now, lastSeenAt: now, passSession: true, passUntil: sessionUntil.getTime(), passKind: 'invitation' }
      return reply.redirect('/', 303)
    } catch (err) {
      return invalid(request, reply, err)
    }
  })
}

function invalid (request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  if (!(err instanceof DomainError)) throw err
  return sendError(request, reply, statusOf(err), err.code, err)
}

export default invitationRoutes
