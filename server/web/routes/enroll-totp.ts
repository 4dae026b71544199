import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import QRCode from 'qrcode'
import { DomainError } from '../../domain/errors.ts'
import type { TotpSetup } from '../../domain/totp.ts'
import type { Services } from '../../wiring.ts'
import { changeContext, requireUser } from '../plugins/auth.ts'
import { sendError, statusFor } from '../plugins/errors.ts'
import { heldActionAfterSetup } from '../plugins/step-up-actions.ts'
import { MASKED_TOKEN_MAX_LENGTH } from '../masked-token.ts'

// The name is checked by the domain (1–60 characters) so that a long one re-renders the form with its message;
// the schema only stops absurd sizes.
const FinishBody = Type.Object({
  code: Type.String({ maxLength: 20 }),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  _csrf: Type.Optional(Type.String({ maxLength: MASKED_TOKEN_MAX_LENGTH }))
})
const RestartBody = Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: MASKED_TOKEN_MAX_LENGTH })) })

const STEP_UP_URL = '/step-up?next=/enroll/totp'

interface PageState {
  setup?: TotpSetup
  /** Why the guard will not let this session add a method; shown instead of a QR code. */
  refusal?: DomainError
  error?: string
  name?: string
}

/** Authenticator app: begin (a pending secret shown as QR + key), then finish with a code from the app. */
const enrollTotpRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { totp, guard, methods, clock } = services
  const options = { preHandler: requireUser, config: { passSession: true as const } }

  function render (reply: FastifyReply, state: PageState): FastifyReply {
    // The page carries the secret in clear: no copy of it may stay in a browser or proxy cache.
    reply.header('cache-control', 'no-store')
    const { setup, refusal } = state
    const i18n = reply.request.i18n
    return reply.page('enroll/totp', {
      title: i18n.t('enroll.totp_title'),
      refusal: refusal === undefined ? null : { message: i18n.error(refusal), stepUpUrl: refusal.code === 'step_up_required' ? STEP_UP_URL : null },
      setup: setup === undefined ? null : { groupedKey: setup.groupedKey, expiresAt: setup.expiresAt },
      name: state.name ?? '',
      error: state.error ?? null,
      scripts: setup === undefined ? [] : ['/static/js/copy.js']
    })
  }

  app.get('/enroll/totp', options, async (request, reply) => {
    const user = request.user!
    const context = changeContext(request, clock.now())
    try {
      // Checked before showing a pending setup too: a step-up that has since lapsed must not show the QR again.
      guard.assertMayAdd(user, await methods.countFor(user.id), context)
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return render(reply.code(statusFor(err)), { refusal: err })
    }
    return render(reply, { setup: await totp.current(user) ?? await totp.begin(user, context) })
  })

  app.get('/enroll/totp/qr.png', options, async (request, reply) => {
    const user = request.user!
    try {
      // The image holds the pending secret: asked the same question as the page, or a lapsed step-up still shows it.
      guard.assertMayAdd(user, await methods.countFor(user.id), changeContext(request, clock.now()))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return sendError(request, reply, statusFor(err), err.code, err)
    }
    const setup = await totp.current(user)
    if (setup === undefined) {
      return sendError(request, reply, 404, 'no_pending_setup', { key: 'enroll.no_pending_setup' })
    }
    // Drawn here, never by an outside QR service: the URI holds the secret.
    const png = await QRCode.toBuffer(setup.uri, { type: 'png', errorCorrectionLevel: 'M', margin: 2, width: 240 })
    return reply.header('cache-control', 'no-store').type('image/png').send(png)
  })

  app.post<{ Body: Static<typeof FinishBody> }>('/enroll/totp', { ...options, schema: { body: FinishBody } }, async (request, reply) => {
    const user = request.user!
    const name = request.body.name ?? ''
    try {
      await totp.finish(user, request.body.code, name, changeContext(request, clock.now()))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      reply.code(statusFor(err))
      if (err.code === 'step_up_required' || err.code === 'untrusted_network') return render(reply, { refusal: err })
      return render(reply, { setup: await totp.current(user), error: request.i18n.error(err), name })
    }
    // A console action held for a first method: on to it, through a step-up with the new app.
    const held = heldActionAfterSetup(request, clock.now())
    if (held !== null) {
      return reply.flashRedirect(held.url, request.i18n.t('enroll.totp_done_held', { action: held.label }))
    }
    return reply.flashRedirect('/', request.i18n.t('enroll.totp_done'))
  })

  app.post<{ Body: Static<typeof RestartBody> }>('/enroll/totp/restart', { ...options, schema: { body: RestartBody } }, async (request, reply) => {
    try {
      await totp.begin(request.user!, changeContext(request, clock.now()))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return render(reply.code(statusFor(err)), { refusal: err })
    }
    return reply.flashRedirect('/enroll/totp', request.i18n.t('enroll.new_qr'), 'info')
  })
}

export default enrollTotpRoutes
