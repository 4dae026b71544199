import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { DomainError } from '../../domain/errors.ts'
import type { MicrosoftAttempt } from '../../domain/microsoft-signin.ts'
import type { Services } from '../../wiring.ts'
import { notFoundFor, sendError, statusFor } from '../plugins/errors.ts'
import { safeNext } from '../next-url.ts'
import { requestContext } from './auth.ts'

const StartQuery = Type.Object({ next: Type.Optional(Type.String({ maxLength: 2048 })) })
// What Microsoft sends back (query response mode); anything else it adds (session_state, …) is ignored.
const CallbackQuery = Type.Object({
  code: Type.Optional(Type.String({ maxLength: 4096 })),
  state: Type.Optional(Type.String({ maxLength: 512 })),
  error: Type.Optional(Type.String({ maxLength: 200 })),
  error_description: Type.Optional(Type.String({ maxLength: 2048 }))
})

// A refused callback is the visitor's (or an attacker's) request gone wrong: a clear page, and nothing changes.
const STATUS_BY_CODE: Record<string, number> = {
  microsoft_state_mismatch: 400,
  microsoft_attempt_expired: 400,
  microsoft_refused: 400,
  microsoft_user_unknown: 403,
  provider_unavailable: 502
}

/** "Sign in with Microsoft" (OIDC authorization code + PKCE) for users synced from Entra ID. */
const entraSignInRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const signIn = services.entra?.signIn
  const { clock } = services

  app.get<{ Querystring: Static<typeof StartQuery> }>('/login/microsoft', {
    schema: { querystring: StartQuery },
    config: { rateLimit: { max: 30, timeWindow: '1 minute' } }
  }, async (request, reply) => {
    if (signIn === undefined) return notFoundFor(request, reply)
    const next = safeNext(request.query.next)
    if (request.user !== null) return reply.redirect(next, 303)
    const { url, attempt } = await signIn.begin(next)
    // State, nonce and verifier stay server-side, in this (not yet signed-in) session; only the state travels.
    request.session.microsoftSignIn = attempt
    return reply.redirect(url, 303)
  })

  app.get<{ Querystring: Static<typeof CallbackQuery> }>('/login/microsoft/callback', {
    schema: { querystring: CallbackQuery },
    config: { rateLimit: { max: 30, timeWindow: '1 minute' } }
  }, async (request, reply) => {
    if (signIn === undefined) return notFoundFor(request, reply)
    // Single use: forgotten before anything is checked, so a replayed callback finds nothing to match.
    const attempt = request.session.microsoftSignIn
    delete request.session.microsoftSignIn
    const { code, state, error } = request.query
    try {
      const { user, mfa, owed } = await signIn.finish(attempt, { code, state, error, errorDescription: request.query.error_description }, requestContext(request))
      // A new session id at sign-in, so an id planted before sign-in (session fixation) is worthless.
      await request.session.regenerate()
      const now = clock.now().getTime()
      request.session.auth = {
        userId: user.id, createdAt: now, lastSeenAt: now,
        // MFA proven at Microsoft (the authentication context in the ID token's acrs, ENTRA_AUTH_CONTEXT) is as fresh
        // a proof as the portal's own step-up; the session id is already new, so this needs no second rotation.
        stepUpAt: mfa && owed === 'none' ? now : undefined,
        secondFactorPending: owed === 'none' ? undefined : true,
        passkeyOnly: owed === 'passkey' ? true : undefined
      }
      // Checked again on the way out, though it was checked when stored: the rule lives in one place.
      const next = safeNext(attempt?.next)
      return reply.redirect(owed === 'none' ? next : `/step-up?next=${encodeURIComponent(next)}`, 303)
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return sendError(request, reply, STATUS_BY_CODE[err.code] ?? statusFor(err), err.code, err)
    }
  })
}

declare module '../plugins/session.ts' {
  interface SessionData {
    /** A Microsoft sign-in under way: checked and forgotten on the callback. */
    microsoftSignIn?: MicrosoftAttempt
  }
}

export default entraSignInRoutes
