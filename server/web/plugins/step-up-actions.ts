import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Clock } from '../../domain/clock.ts'
import type { EnrollmentGuard } from '../../domain/enrollment-guard.ts'
import { changeContext, requireUser } from './auth.ts'
import { sendError, wantsJson } from './errors.ts'
import { safeNext } from '../next-url.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A console action (helpdesk, admin): it needs a step-up in the last few minutes. The text says what the
     * action does, for the page that offers to send it once the step-up is done ("Arm the campaign").
     */
    stepUp?: string
  }
}

/** A console action held while its author steps up, so nothing they entered is lost. */
export interface HeldAction {
  /** Where it was posted (every console action is a POST). */
  path: string
  /** The page the action was sent from (where "Cancel" goes back to). */
  back: string
  label: string
  fields: Record<string, string | string[]>
  heldAt: number
}

declare module '@fastify/session' {
  interface FastifySessionObject {
    heldAction?: HeldAction
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
// Console addresses: every state-changing route under them must say it needs a step-up.
const CONSOLES = /^\/(admin|helpdesk)(\/|$)/
// A held action older than this is dropped rather than offered (the admin has moved on).
const HELD_MS = 30 * 60_000
const CONTINUE_PATH = '/step-up/continue'

/**
 * Step-up before console actions. A helpdesk or admin action (route config `stepUp`) runs only if the session
 * proved a second factor in the last STEP_UP_MINUTES. Otherwise nothing happens: the request is held in the
 * session and the person is sent to confirm it's them, then shown what they were about to do, with one button
 * to send it (a fresh form with its own CSRF token, never an automatic replay). Scripts get 403 step_up_required.
 *
 * Only a genuine request from the console, by someone whose role allows it, is ever held. At start, a
 * state-changing console route without `stepUp` is a programming error and stops the server.
 */
export default fp<{ guard: EnrollmentGuard, clock: Clock }>(async (app, { guard, clock }) => {
  /** Holds a console action unless the session stepped up recently (see above). */
  async function stepUpFirst (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const label = request.routeOptions.config.stepUp
    if (reply.sent || label === undefined || request.user === null) return
    const now = clock.now()
    if (guard.hasFreshStepUp(changeContext(request, now))) {
      delete request.session.heldAction
      return
    }
    if (wantsJson(request)) {
      sendError(request, reply, 403, 'step_up_required', 'Confirm it\'s you (step-up) first, then try again.')
      return
    }
    request.session.heldAction = { path: request.url, back: pageSentFrom(request), label, fields: formFields(request.body), heldAt: now.getTime() }
    await reply.flashRedirect(`/step-up?next=${encodeURIComponent(CONTINUE_PATH)}`,
      'Confirm it\'s you first. Nothing has changed yet: what you entered is kept, and you can send it once you have confirmed.', 'info')
  }

  // The check is the route's last preValidation hook: after the CSRF check and the role guards (which run first,
  // as app- and plugin-level hooks), before the body is validated, so a held form is kept even if it has mistakes.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    if (!CONSOLES.test(route.url) || methods.every((m) => SAFE_METHODS.has(m))) return
    if (typeof route.config?.stepUp !== 'string') {
      throw new Error(`${methods.join(',')} ${route.url}: console actions need config.stepUp (what the action does) so they ask for a step-up`)
    }
    const own = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation]
    route.preValidation = [...own, stepUpFirst]
  })

  // What the person was about to do, with one button to send it. Not cached: the fields may hold a reason.
  app.get(CONTINUE_PATH, { preHandler: requireUser }, async (request, reply) => {
    const held = request.session.heldAction
    if (held === undefined || clock.now().getTime() - held.heldAt > HELD_MS || !CONSOLES.test(held.path)) {
      delete request.session.heldAction
      return reply.flashRedirect('/', 'There is nothing waiting to be sent.', 'info')
    }
    if (!guard.hasFreshStepUp(changeContext(request, clock.now()))) {
      return reply.redirect(`/step-up?next=${encodeURIComponent(CONTINUE_PATH)}`, 303)
    }
    reply.header('cache-control', 'no-store')
    return reply.page('step-up-continue', {
      title: held.label,
      held,
      hidden: Object.entries(held.fields).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v) => ({ name, value: v }))),
      back: held.back
    })
  })
}, { name: 'step-up-actions', dependencies: ['auth', 'csrf', 'views'] })

/** The form's fields as sent (urlencoded bodies are flat), without the spent CSRF token. */
function formFields (body: unknown): Record<string, string | string[]> {
  const fields: Record<string, string | string[]> = {}
  if (typeof body !== 'object' || body === null) return fields
  for (const [name, value] of Object.entries(body)) {
    if (name === '_csrf') continue
    if (typeof value === 'string') fields[name] = value
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) fields[name] = value
  }
  return fields
}

/** The console page the form was on (the Referer, which this site sends same-origin), else the console's home. */
function pageSentFrom (request: FastifyRequest): string {
  try {
    const referer = new URL(request.headers.referer ?? '')
    if (referer.host === request.headers.host && CONSOLES.test(referer.pathname)) return safeNext(referer.pathname + referer.search)
  } catch { /* no Referer, or not a URL: the console home */ }
  return request.url.startsWith('/helpdesk') ? '/helpdesk' : '/admin'
}
