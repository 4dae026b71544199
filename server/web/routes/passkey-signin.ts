import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { PasskeyService } from '../../domain/passkeys.ts'
import { secondFactorRequirement } from '../../domain/signin.ts'
import type { Services } from '../../wiring.ts'
import { safeNext } from '../next-url.ts'
import { AuthenticationResponse } from '../schemas/webauthn.ts'
import { requestContext } from './auth.ts'

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
  const { passkeys, audit, clock, methods, config } = services

  app.post('/login/passkey/options', rateLimited, async () => {
    return passkeys.authenticationOptions(null)
  })

  app.post<{ Body: Static<typeof VerifyBody> }>('/login/passkey/verify', { ...rateLimited, schema: { body: VerifyBody } }, async (request) => {
    const { challengeId, response, next } = request.body
    // Refusals are audited by the service and answered with one generic message, whatever the reason.
    const { user, method, userVerified } = await passkeys.authenticate(challengeId, response as AuthenticationResponseJSON, null)
    // Without user verification (no PIN or biometric checked) the passkey is only something held: it stands in
    // for the password, so the session owes whatever second factor a password sign-in would.
    const owed = userVerified ? 'none' : secondFactorRequirement(user, (await methods.listFor(user.id)).map((m) => m.kind), config.staffPasskeyRequired)
    // A new session id at sign-in, so an id planted before sign-in (session fixation) is worthless.
    await request.session.regenerate()
    const now = clock.now().getTime()
    request.session.auth = {
      userId: user.id,
      createdAt: now,
      lastSeenAt: now,
      // A verified passkey is itself two factors, so this sign-in also counts as a fresh step-up.
      stepUpAt: userVerified ? now : undefined,
      secondFactorPending: owed === 'none' ? undefined : true,
      passkeyOnly: owed === 'passkey' ? true : undefined
    }
    await audit.append({ action: 'signin.success', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { method: 'passkey', methodId: method.id, userVerified }, ...requestContext(request) })
    const to = safeNext(next)
    return { ok: true, redirect: owed === 'none' ? to : `/step-up?next=${encodeURIComponent(to)}` }
  })
}

export default passkeySignInRoutes
