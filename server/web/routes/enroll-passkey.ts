import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { DomainError } from '../../domain/errors.ts'
import type { PasskeyService } from '../../domain/passkeys.ts'
import type { Services } from '../../wiring.ts'
import { changeContext, requireUser } from '../plugins/auth.ts'
import { heldActionAfterSetup } from '../plugins/step-up-actions.ts'
import { RegistrationResponse } from '../schemas/webauthn.ts'

const VerifyBody = Type.Object({
  challengeId: Type.String({ minLength: 1, maxLength: 64 }),
  response: RegistrationResponse,
  name: Type.Optional(Type.String({ maxLength: 60 }))
})

type RegistrationResponseJSON = Parameters<PasskeyService['register']>[2]

/** Adding a passkey: the page, then the two steps of the ceremony (options, verify) as JSON for static/js/passkey.js. */
const enrollPasskeyRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { passkeys, guard, methods, clock } = services
  // A pass session exists to enroll, so these routes are open to it.
  const options = { preHandler: requireUser, config: { passSession: true as const } }

  app.get('/enroll/passkey', options, async (request, reply) => {
    const user = request.user!
    // Ask the guard up front, so someone who would be refused reads why instead of a button that fails.
    let blocked: { code: string, message: string } | null = null
    try {
      guard.assertMayAdd(user, await methods.countFor(user.id), changeContext(request, clock.now()))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      blocked = { code: err.code, message: request.i18n.error(err) }
    }
    return reply.page('enroll/passkey', {
      title: request.i18n.t('enroll.passkey_title'),
      blocked,
      stepUpUrl: `/step-up?next=${encodeURIComponent('/enroll/passkey')}`,
      error: null,
      scripts: blocked === null ? ['/static/js/passkey.js'] : []
    })
  })

  app.post('/enroll/passkey/options', options, async (request) => {
    return passkeys.registrationOptions(request.user!, changeContext(request, clock.now()))
  })

  app.post<{ Body: Static<typeof VerifyBody> }>('/enroll/passkey/verify', { ...options, schema: { body: VerifyBody } }, async (request) => {
    const { challengeId, response, name } = request.body
    const method = await passkeys.register(request.user!, challengeId, response as RegistrationResponseJSON, name ?? '',
      request.headers['user-agent'] ?? null, changeContext(request, clock.now()))
    // A console action held for a first method: on to it, through a step-up with the new passkey.
    const held = heldActionAfterSetup(request, clock.now())
    if (held !== null) {
      request.session.flash = { kind: 'ok', text: request.i18n.t('enroll.passkey_ready_held', { name: method.name, action: held.label }) }
      return { ok: true, redirect: held.url }
    }
    request.session.flash = { kind: 'ok', text: request.i18n.t('enroll.passkey_ready', { name: method.name }) }
    return { ok: true, redirect: '/' }
  })
}

export default enrollPasskeyRoutes
