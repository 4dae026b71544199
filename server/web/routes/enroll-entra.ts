import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import QRCode from 'qrcode'
import { DomainError } from '../../domain/errors.ts'
import type { TotpSetup } from '../../domain/totp.ts'
import type { Services } from '../../wiring.ts'
import { changeContext, requireUser } from '../plugins/auth.ts'
import { notFoundFor, sendError, statusFor } from '../plugins/errors.ts'
import { MASKED_TOKEN_MAX_LENGTH } from '../masked-token.ts'

/** Where Entra users register what the portal cannot (passkeys, and apps when hardware OATH is off). */
export const MICROSOFT_SECURITY_INFO = 'https://mysignins.microsoft.com/security-info'

const FinishBody = Type.Object({
  code: Type.String({ maxLength: 20 }),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  _csrf: Type.Optional(Type.String({ maxLength: MASKED_TOKEN_MAX_LENGTH }))
})
const EmptyBody = Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: MASKED_TOKEN_MAX_LENGTH })) })

const APP_URL = '/enroll/entra-app'
const PASSKEY_URL = '/enroll/entra-passkey'
const GUARD_CODES = new Set(['step_up_required', 'untrusted_network', 'not_entra_user'])

/** The kinds Microsoft lists, as the passkey page names them (catalogue keys). */
const KIND_NAMES: Record<string, string> = {
  passkey: 'enroll.entra_kind_passkey', totp: 'enroll.entra_kind_totp', phone: 'enroll.entra_kind_phone', authenticator: 'enroll.entra_kind_authenticator',
  email: 'enroll.entra_kind_email', external: 'enroll.entra_kind_external', qr_code_pin: 'enroll.entra_kind_qr_code_pin'
}

/**
 * Entra users' authenticator app (registered in Entra through the hardware OATH API, or on Microsoft's page when
 * that is off) and passkey (always on Microsoft's page: its WebAuthn relying party is login.microsoftonline.com).
 */
const enrollEntraRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const portal = services.entra
  const { clock } = services
  const options = { preHandler: requireUser, config: { passSession: true as const } }
  // Per signed-in person; the domain's Regulator locks code entry after repeated wrong codes on top of this.
  const rateLimit = { max: 10, timeWindow: '1 minute', hook: 'preHandler' as const, keyGenerator: (request: FastifyRequest) => request.user?.id ?? request.ip }

  if (portal === undefined) {
    for (const url of [APP_URL, PASSKEY_URL]) app.get(url, options, async (request, reply) => notFoundFor(request, reply))
    return
  }
  const { enrollment } = portal

  function renderApp (reply: FastifyReply, state: { setup?: TotpSetup, refusal?: DomainError, error?: string, name?: string }): FastifyReply {
    // The page carries the secret in clear: no copy of it may stay in a browser or proxy cache.
    reply.header('cache-control', 'no-store')
    const { setup, refusal } = state
    const i18n = reply.request.i18n
    return reply.page('enroll/entra-app', {
      title: i18n.t('enroll.totp_title'),
      hardwareOath: enrollment.hardwareOath,
      securityInfoUrl: MICROSOFT_SECURITY_INFO,
      refusal: refusal === undefined ? null : { message: i18n.error(refusal), stepUpUrl: refusal.code === 'step_up_required' ? `/step-up?next=${encodeURIComponent(APP_URL)}` : null },
      setup: setup === undefined ? null : { groupedKey: setup.groupedKey, expiresAt: setup.expiresAt },
      name: state.name ?? '',
      error: state.error ?? null,
      scripts: setup === undefined ? [] : ['/static/js/copy.js']
    })
  }

  app.get(APP_URL, options, async (request, reply) => {
    const user = request.user!
    if (!enrollment.hardwareOath) return renderApp(reply, {})
    const context = changeContext(request, clock.now())
    try {
      // Asked before showing a pending setup too: a step-up that has since lapsed must not show the QR again.
      await enrollment.assertMayAdd(user, context)
      // And no QR code for a secret the tenant's policy would refuse.
      await enrollment.assertOathAllowed()
      return renderApp(reply, { setup: await enrollment.currentOath(user) ?? await enrollment.beginOath(user, context) })
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return renderApp(reply.code(statusFor(err)), { refusal: err })
    }
  })

  app.get(`${APP_URL}/qr.png`, options, async (request, reply) => {
    const user = request.user!
    try {
      // The image holds the pending secret: asked the same question as the page, or a lapsed step-up still shows it.
      await enrollment.assertMayAdd(user, changeContext(request, clock.now()))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return sendError(request, reply, statusFor(err), err.code, err)
    }
    const setup = enrollment.hardwareOath ? await enrollment.currentOath(user) : undefined
    if (setup === undefined) {
      return sendError(request, reply, 404, 'no_pending_setup', { key: 'enroll.no_pending_setup' })
    }
    // Drawn here, never by an outside QR service: the URI holds the secret.
    const png = await QRCode.toBuffer(setup.uri, { type: 'png', errorCorrectionLevel: 'M', margin: 2, width: 240 })
    return reply.header('cache-control', 'no-store').type('image/png').send(png)
  })

  app.post<{ Body: Static<typeof FinishBody> }>(APP_URL, { ...options, config: { ...options.config, rateLimit }, schema: { body: FinishBody } }, async (request, reply) => {
    const user = request.user!
    const name = request.body.name ?? ''
    try {
      const added = await enrollment.finishOath(user, request.body.code, name, changeContext(request, clock.now()))
      return await reply.flashRedirect('/', request.i18n.t('enroll.entra_app_done', { name: added.name }))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      reply.code(err.code === 'provider_unavailable' ? 502 : statusFor(err))
      if (GUARD_CODES.has(err.code) || err.code === 'entra_oath_off' || err.code === 'entra_oath_policy_off') return renderApp(reply, { refusal: err })
      return renderApp(reply, { setup: await enrollment.currentOath(user), error: request.i18n.error(err), name })
    }
  })

  app.post<{ Body: Static<typeof EmptyBody> }>(`${APP_URL}/restart`, { ...options, schema: { body: EmptyBody } }, async (request, reply) => {
    try {
      await enrollment.beginOath(request.user!, changeContext(request, clock.now()))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return renderApp(reply.code(statusFor(err)), { refusal: err })
    }
    return reply.flashRedirect(APP_URL, request.i18n.t('enroll.new_qr'), 'info')
  })

  app.get(PASSKEY_URL, options, async (request, reply) => {
    const user = request.user!
    return reply.page('enroll/entra-passkey', {
      title: request.i18n.t('enroll.entra_passkey_title'),
      securityInfoUrl: MICROSOFT_SECURITY_INFO,
      entraUser: user.provider === 'entra' && user.externalId !== null,
      hasPasskey: user.providerMethods.includes('passkey'),
      registered: user.providerMethods.map((k) => KIND_NAMES[k] === undefined ? k : request.i18n.t(KIND_NAMES[k]))
    })
  })

  app.post<{ Body: Static<typeof EmptyBody> }>(`${PASSKEY_URL}/check`, {
    ...options,
    // Each check is a live Graph read: a few a minute per person is plenty, and sync catches up anyway.
    config: { ...options.config, rateLimit: { ...rateLimit, max: 5 } },
    schema: { body: EmptyBody }
  }, async (request, reply) => {
    try {
      const { methods } = await enrollment.checkRegistration(request.user!)
      return await (methods.includes('passkey')
        ? reply.flashRedirect(PASSKEY_URL, request.i18n.t('enroll.entra_passkey_found'))
        : reply.flashRedirect(PASSKEY_URL, request.i18n.t('enroll.entra_passkey_missing'), 'info'))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return await reply.flashRedirect(PASSKEY_URL, request.i18n.error(err), 'error')
    }
  })
}

export default enrollEntraRoutes
