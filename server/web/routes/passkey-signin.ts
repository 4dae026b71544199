import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { PasskeyService } from '../../domain/passkeys.ts'
import type { Services } from '../../wiring.ts'
import { AuthenticationResponse } from '../schemas/webauthn.ts'
import { requestContext, safeNext } from './auth.ts'

const VerifyBody = Type.Object({
  challengeId: Type.String({ minLength: 1, maxLength: 64 }),
  response: AuthenticationResponse,
  next: Type.Optional(Type.String({ maxLength: 2048 }))
})

type AuthenticationResponseJSON = Parameters<PasskeyService['authenticate']>[1]

// Like POST /login: a per-address ceiling on top of the single-use challenges.
const rateLimited = { config: { rateLimit: { max: 30, timeWindow: '1 minute' } } }

/** Signing in with a passkey alone (discoverable credentials, no username): options, then verify. */
const passkeySignInRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { passkeys, audit, clock } = services

  app.post('/login/passkey/options', rateLimited, async () => {
    return passkeys.authenticationOptions(null)
  })

  app.post<{ Body: Static<typeof VerifyBody> }>('/login/passkey/verify', { ...rateLimited, schema: { body: VerifyBody } }, async (request) => {
    const { challengeId, response, next } = request.body
    // Refusals are audited by the service and answered with one generic message, whatever the reason.
    const { user, method } = await passkeys.authenticate(challengeId, response as AuthenticationResponseJSON, null)
    // A new session id at sign-in, so an id planted before sign-in (session fixation) is worthless.
    await request.session.regenerate()
    const now = clock.now().getTime()
    // A passkey is itself a second factor, so this sign-in also counts as a fresh step-up.
    request.session.auth = { userId: user.id, createdAt: now, lastSeenAt: now, stepUpAt: now }
    audit.append({ action: 'signin.success', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { method: 'passkey', methodId: method.id }, ...requestContext(request) })
    return { ok: true, redirect: safeNext(next) }
  })
}

export default passkeySignInRoutes
