import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { parsePhoneNumberFromString } from 'libphonenumber-js'
import { DomainError } from '../../domain/errors.ts'
import { PHONE_RULES } from '../../domain/phone.ts'
import type { Services } from '../../wiring.ts'
import { changeContext, requireUser } from '../plugins/auth.ts'
import { statusFor } from '../plugins/errors.ts'
import { heldActionAfterSetup } from '../plugins/step-up-actions.ts'

const BeginBody = Type.Object({ phone: Type.Optional(Type.String({ maxLength: 64 })), _csrf: Type.Optional(Type.String()) })
const VerifyBody = Type.Object({ code: Type.String({ maxLength: 20 }), _csrf: Type.Optional(Type.String()) })
const ResendBody = Type.Object({ _csrf: Type.Optional(Type.String()) })

// The guard's refusals are explained in place of the forms, not as a form error.
const GUARD_CODES = new Set(['untrusted_network', 'step_up_required'])

// Errors about what was typed into a field, so the page can point the field at the message.
const PHONE_FIELD_CODES = new Set(['invalid_phone', 'phone_exists', 'phone_pinned', 'sms_country_not_allowed'])
const CODE_FIELD_CODES = new Set(['wrong_code'])

interface PageState {
  phone?: string
  error?: DomainError
}

/**
 * Phone enrollment: send a code (begin), prove it (verify), or ask again (resend). The code only ever goes to
 * the SMS sender; no page shows it.
 */
const enrollPhoneRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { phone: phones, guard, methods, clock, config } = services
  const options = { preHandler: requireUser, config: { passSession: true as const } }
  // Per signed-in person rather than per address, so a whole office behind one NAT is not throttled together.
  // The domain already limits attempts per code and sends per hour; this only slows scripted hammering.
  const rateLimit = { max: 20, timeWindow: '1 minute', hook: 'preHandler' as const, keyGenerator: (request: FastifyRequest) => request.user?.id ?? request.ip }

  async function render (request: FastifyRequest, reply: FastifyReply, state: PageState = {}): Promise<FastifyReply> {
    const user = request.user!
    const { error } = state
    let blocked: DomainError | null = error !== undefined && GUARD_CODES.has(error.code) ? error : null
    if (blocked === null) {
      try {
        guard.assertMayAdd(user, await methods.countFor(user.id), changeContext(request, clock.now()))
      } catch (err) {
        if (!(err instanceof DomainError)) throw err
        blocked = err
        if (error === undefined) reply.code(statusFor(err))
      }
    }
    const pinnedNumber = phones.pinnedNumber(user)
    const lock = await phones.setupLock(user)
    const i18n = request.i18n
    return reply.page('enroll/phone', {
      title: i18n.t('enroll.phone_title'),
      blocked: blocked === null ? null : { code: blocked.code, message: i18n.error(blocked) },
      pinned: phones.pinned,
      pinnedNumber: pinnedNumber === null ? null : displayNumber(pinnedNumber),
      // The default region's name in the reader's language ("United Kingdom", "Vereinigtes Königreich").
      region: { code: config.phoneDefaultRegion, name: i18n.regionNames([config.phoneDefaultRegion]) },
      pending: request.session.phonePending ?? null,
      codeMinutes: PHONE_RULES.codeLifetimeMs / 60_000,
      // Too many wrong codes: no code can succeed, so the page says when a new one can be asked for instead.
      codeLocked: lock.locked ? { newCodeAt: lock.newCodeAt, now: lock.newCodeAt.getTime() <= clock.now().getTime() } : null,
      phone: state.phone ?? '',
      error: blocked !== null && blocked === error ? null : error === undefined ? null : i18n.error(error),
      errorField: error === undefined ? null : PHONE_FIELD_CODES.has(error.code) ? 'phone' : CODE_FIELD_CODES.has(error.code) ? 'code' : null
    })
  }

  /** Re-renders after a refused POST, keeping the pending-code hint in step with what the domain said. */
  async function refused (request: FastifyRequest, reply: FastifyReply, err: unknown, state: PageState = {}): Promise<FastifyReply> {
    if (!(err instanceof DomainError)) throw err
    // Nothing is waiting any more (used, replaced, never sent, or the text could not be sent): stop offering the code form.
    if (err.code === 'nothing_pending' || err.code === 'sms_failed') delete request.session.phonePending
    // A code went out moments ago (from another tab, or before signing in again): offer the form to enter it.
    if (err.code === 'resend_too_soon') request.session.phonePending ??= { to: null }
    if (typeof err.details.retryAfterSeconds === 'number') reply.header('retry-after', String(err.details.retryAfterSeconds))
    return await render(request, reply.code(statusFor(err)), { ...state, error: err })
  }

  app.get('/enroll/phone', options, async (request, reply) => await render(request, reply))
  // The code forms post to these addresses, so they are what the address bar shows after a refused code: reloading
  // or opening one lands back on the form instead of a 404.
  for (const path of ['/enroll/phone/verify', '/enroll/phone/resend']) app.get(path, options, async (_request, reply) => reply.redirect('/enroll/phone', 303))

  app.post<{ Body: Static<typeof BeginBody> }>('/enroll/phone', { ...options, config: { ...options.config, rateLimit }, schema: { body: BeginBody } }, async (request, reply) => {
    const typed = request.body.phone
    try {
      const pending = await phones.begin(request.user!, typed, changeContext(request, clock.now()), request.i18n)
      const to = displayNumber(pending.phone!)
      request.session.phonePending = { to }
      return reply.flashRedirect('/enroll/phone', request.i18n.t('enroll.phone_sent', { to, minutes: PHONE_RULES.codeLifetimeMs / 60_000 }), 'info')
    } catch (err) {
      return await refused(request, reply, err, { phone: typed })
    }
  })

  app.post<{ Body: Static<typeof VerifyBody> }>('/enroll/phone/verify', { ...options, config: { ...options.config, rateLimit }, schema: { body: VerifyBody } }, async (request, reply) => {
    try {
      const context = changeContext(request, clock.now())
      const method = await phones.finish(request.user!, request.body.code, context)
      delete request.session.phonePending
      // (entra) The verified number also becomes the user's mobile MFA phone in Entra. The portal method is kept
      // whatever Entra says; a failure is audited (entra.phone_push_failed) and the user told gently. A number Entra
      // already holds is replaced only after a step-up with an existing method (entra.phone_push_refused otherwise).
      const entra = request.user!.provider === 'entra' ? await services.entra?.phones.pushVerified(request.user!, method.phone!, context) : undefined
      if (entra?.pushed === false && entra.kept === 'existing_number') {
        return reply.flashRedirect('/', request.i18n.t('enroll.phone_added_entra_existing', { name: method.name }), 'info')
      }
      if (entra?.pushed === false) {
        return reply.flashRedirect('/', request.i18n.t('enroll.phone_added_entra_failed', { name: method.name }), 'info')
      }
      // A console action held for a first method: on to it, through a step-up with the new phone.
      const held = heldActionAfterSetup(request, clock.now())
      if (held !== null) {
        return reply.flashRedirect(held.url, request.i18n.t('enroll.phone_added_held', { name: method.name, action: held.label }))
      }
      return reply.flashRedirect('/', request.i18n.t('enroll.phone_added', { name: method.name, entra: entra?.pushed === true ? 'yes' : 'no' }))
    } catch (err) {
      // The typed code is not put back into the form: a rejected code is retyped anyway, and keeping codes
      // out of every page keeps the rule "the code is only ever in the text message" simple to check.
      return await refused(request, reply, err)
    }
  })

  app.post<{ Body: Static<typeof ResendBody> }>('/enroll/phone/resend', { ...options, config: { ...options.config, rateLimit }, schema: { body: ResendBody } }, async (request, reply) => {
    try {
      const pending = await phones.resend(request.user!, changeContext(request, clock.now()), request.i18n)
      const to = displayNumber(pending.phone!)
      request.session.phonePending = { to }
      return reply.flashRedirect('/enroll/phone', request.i18n.t('enroll.phone_resent', { to }), 'info')
    } catch (err) {
      return await refused(request, reply, err)
    }
  })
}

/** "+1 202 555 0143": the user's own number, shown in full so they can recognise it. */
function displayNumber (e164: string): string {
  return parsePhoneNumberFromString(e164)?.formatInternational() ?? e164
}

declare module '../plugins/session.ts' {
  interface SessionData {
    /**
     * Set while a phone code is probably waiting, so the page offers the code form. Only a hint for the page:
     * the domain decides whether a code is pending, and clears it on use.
     */
    phonePending?: { to: string | null }
  }
}

export default enrollPhoneRoutes
