import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Clock } from '../../domain/clock.ts'
import { DomainError } from '../../domain/errors.ts'
import type { MethodStore } from '../../domain/methods.ts'
import type { PasskeyService } from '../../domain/passkeys.ts'
import type { PhoneService } from '../../domain/phone.ts'
import type { TotpService } from '../../domain/totp.ts'
import { markSteppedUp, requireUser } from '../plugins/auth.ts'
import { AuthenticationResponse } from '../schemas/webauthn.ts'
import { statusFor } from '../plugins/errors.ts'
import { safeNext } from '../next-url.ts'
import { addOptionsFor, KIND_LABELS } from './home.ts'
import { CONTINUE_PATH, HELD_MINUTES, heldLabel, waitingAction } from '../plugins/step-up-actions.ts'

const NextQuery = Type.Object({ next: Type.Optional(Type.String({ maxLength: 2048 })) })
const TotpBody = Type.Object({ methodId: Type.String({ maxLength: 64 }), code: Type.String({ maxLength: 20 }), next: Type.Optional(Type.String({ maxLength: 2048 })), _csrf: Type.Optional(Type.String()) })
const PhoneSendBody = Type.Object({ methodId: Type.String({ maxLength: 64 }), next: Type.Optional(Type.String({ maxLength: 2048 })), _csrf: Type.Optional(Type.String()) })
const PhoneBody = Type.Object({ code: Type.String({ maxLength: 20 }), next: Type.Optional(Type.String({ maxLength: 2048 })), _csrf: Type.Optional(Type.String()) })
const PasskeyVerifyBody = Type.Object({
  challengeId: Type.String({ maxLength: 64 }),
  response: AuthenticationResponse,
  next: Type.Optional(Type.String({ maxLength: 2048 }))
})

interface Deps { methods: MethodStore, totp: TotpService, phone: PhoneService, passkeys: PasskeyService, clock: Clock, staffPasskeyRequired: boolean }

/** Step-up: prove a second factor you already have before changing your methods. */
const stepUpRoutes: FastifyPluginAsync<Deps> = async (app, { methods, totp, phone, passkeys, clock, staffPasskeyRequired }) => {
  const options = { preHandler: requireUser, config: { passSession: true as const, secondFactor: true as const } }

  /** Staff accounts holding a passkey prove it's them with the passkey only (sign-in and actions alike). */
  async function passkeyOnly (request: FastifyRequest): Promise<boolean> {
    if (request.session.auth?.passkeyOnly === true) return true
    const user = request.user!
    return staffPasskeyRequired && user.role !== 'user' && (await methods.listFor(user.id)).some((m) => m.kind === 'passkey')
  }

  async function render (request: FastifyRequest, reply: FastifyReply, next: string, extra: Record<string, unknown> = {}): Promise<FastifyReply> {
    const only = await passkeyOnly(request)
    const list = (await methods.listFor(request.user!.id)).filter((m) => !only || m.kind === 'passkey').map((m) => ({ ...m, kindLabel: KIND_LABELS[m.kind] }))
    const signingIn = request.session.auth?.secondFactorPending === true
    // A console action held for this step-up: the page names it, and with no method yet, says how to get one first.
    const held = next === CONTINUE_PATH ? waitingAction(request, clock.now()) : undefined
    const title = request.i18n.t(list.length === 0 && !signingIn ? 'stepup.set_up_first_title' : 'stepup.title')
    return reply.page('step-up', {
      title,
      next,
      methods: list,
      error: null,
      codeSent: false,
      signingIn,
      passkeyOnly: only,
      held: held === undefined ? null : { label: heldLabel(request.i18n, held), minutes: HELD_MINUTES },
      // Step-up takes the portal's own methods, so these are the ones offered, whatever directory the account is in.
      firstMethodOptions: list.length === 0 ? addOptionsFor('local', request.i18n.t) : [],
      scripts: ['/static/js/passkey.js'],
      ...extra
    })
  }

  async function done (request: FastifyRequest, reply: FastifyReply, next: string): Promise<FastifyReply> {
    await markSteppedUp(request, clock.now())
    return reply.flashRedirect(next, request.i18n.t('stepup.confirmed'))
  }

  app.get<{ Querystring: Static<typeof NextQuery> }>('/step-up', { ...options, schema: { querystring: NextQuery } }, async (request, reply) => {
    return render(request, reply, safeNext(request.query.next), { codeSent: phone !== undefined && request.session.stepUpPhoneSent === true })
  })

  app.post<{ Body: Static<typeof TotpBody> }>('/step-up/totp', { ...options, schema: { body: TotpBody } }, async (request, reply) => {
    const next = safeNext(request.body.next)
    if (await passkeyOnly(request)) return render(request, reply.code(403), next, { error: request.i18n.t('stepup.passkey_only_refused') })
    try {
      await totp.verify(request.user!, request.body.methodId, request.body.code)
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return render(request, reply.code(statusFor(err)), next, { error: request.i18n.error(err) })
    }
    return done(request, reply, next)
  })

  app.post<{ Body: Static<typeof PhoneSendBody> }>('/step-up/phone/send', { ...options, schema: { body: PhoneSendBody } }, async (request, reply) => {
    const next = safeNext(request.body.next)
    if (await passkeyOnly(request)) return render(request, reply.code(403), next, { error: request.i18n.t('stepup.passkey_only_refused') })
    try {
      await phone.beginStepUp(request.user!, request.body.methodId, request.i18n)
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return render(request, reply.code(statusFor(err)), next, { error: request.i18n.error(err) })
    }
    request.session.stepUpPhoneSent = true
    return reply.flashRedirect(`/step-up?next=${encodeURIComponent(next)}`, request.i18n.t('stepup.code_sent'), 'info')
  })

  app.post<{ Body: Static<typeof PhoneBody> }>('/step-up/phone', { ...options, schema: { body: PhoneBody } }, async (request, reply) => {
    const next = safeNext(request.body.next)
    if (await passkeyOnly(request)) return render(request, reply.code(403), next, { error: request.i18n.t('stepup.passkey_only_refused') })
    try {
      await phone.finishStepUp(request.user!, request.body.code)
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return render(request, reply.code(statusFor(err)), next, { error: request.i18n.error(err), codeSent: true })
    }
    delete request.session.stepUpPhoneSent
    return done(request, reply, next)
  })

  // The code forms post to these addresses, so they are what the address bar shows after a refused code: reloading
  // or opening one lands back on the form (keeping where to go next) instead of a 404. The code is never in the URL.
  for (const path of ['/step-up/totp', '/step-up/phone/send', '/step-up/phone', '/step-up/recovery-code']) {
    app.get<{ Querystring: Static<typeof NextQuery> }>(path, { ...options, schema: { querystring: NextQuery } }, async (request, reply) => {
      return reply.redirect(`/step-up?next=${encodeURIComponent(safeNext(request.query.next))}`, 303)
    })
  }

  app.post('/step-up/passkey/options', options, async (request) => {
    const { challengeId, options: publicKey } = await passkeys.authenticationOptions(request.user!)
    return { challengeId, options: publicKey }
  })

  app.post<{ Body: Static<typeof PasskeyVerifyBody> }>('/step-up/passkey/verify', { ...options, schema: { body: PasskeyVerifyBody } }, async (request) => {
    // Refused (user_verification_required) unless the authenticator checked the PIN or biometric.
    await passkeys.authenticate(request.body.challengeId, request.body.response as never, request.user!)
    await markSteppedUp(request, clock.now())
    request.session.flash = { kind: 'ok', text: request.i18n.t('stepup.confirmed') }
    return { ok: true, redirect: safeNext(request.body.next) }
  })
}

declare module '../plugins/session.ts' {
  interface SessionData {
    stepUpPhoneSent?: boolean
  }
}

export default stepUpRoutes
