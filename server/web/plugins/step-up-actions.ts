import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Clock } from '../../domain/clock.ts'
import type { EnrollmentGuard } from '../../domain/enrollment-guard.ts'
import type { Translator } from '../../domain/i18n.ts'
import { changeContext, requireUser } from './auth.ts'
import { sendError, wantsJson } from './errors.ts'
import { safeNext } from '../next-url.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A console action (helpdesk, admin): it needs a step-up in the last few minutes. The catalogue key
     * (locales/<language>/stepup.json, `stepup.action.…`) says what the action does, for the pages that offer to
     * send it once the step-up is done ("Arm the campaign"), in the reader's language.
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
  /** What the action does: a catalogue key (`stepup.action.…`); write it out with heldLabel. */
  label: string
  fields: Record<string, string | string[]>
  heldAt: number
}

declare module './session.ts' {
  interface SessionData {
    heldAction?: HeldAction
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
// Console addresses: every state-changing route under them must say it needs a step-up.
const CONSOLES = /^\/(admin|helpdesk)(\/|$)/
// A held action older than this is dropped rather than offered (the admin has moved on).
const HELD_MS = 30 * 60_000
/** How long a held action waits, for the pages that promise to keep it. */
export const HELD_MINUTES = HELD_MS / 60_000
export const CONTINUE_PATH = '/step-up/continue'
/** The step-up page, leading on to the held action's offer. */
export const HELD_STEP_UP = `/step-up?next=${encodeURIComponent(CONTINUE_PATH)}`

/** The console action this session holds, if it is still to be offered (recent, and bound for a console). */
export function waitingAction (request: FastifyRequest, now: Date): HeldAction | undefined {
  const held = request.session.heldAction
  if (held === undefined || now.getTime() - held.heldAt > HELD_MS || !CONSOLES.test(held.path)) return undefined
  return held
}

/** What a held action does, in the reader's words (a label that is no catalogue key is shown as it is). */
export function heldLabel (i18n: Translator, held: Pick<HeldAction, 'label'>): string {
  return i18n.has(held.label) ? i18n.t(held.label) : held.label
}

/**
 * A held form's fields as the continue page lists them: each named by its label (`stepup.field.<name>`, else by its
 * name), and a ticked box as "Yes".
 */
export function heldFieldsShown (i18n: Translator, fields: Array<{ name: string, value: string }>): Array<{ label: string, value: string }> {
  return fields.filter((f) => f.value !== '').map((f) => ({
    label: i18n.has(`stepup.field.${f.name}`) ? i18n.t(`stepup.field.${f.name}`) : f.name,
    value: f.value === 'on' ? i18n.t('stepup.checked') : f.value
  }))
}

/**
 * After a person sets up a sign-in method (typically their first, which a held console action was waiting for):
 * the held action's label and where to go to send it (the offer asks for a step-up with the new method first), or
 * null when nothing waits and the enrollment page goes home as usual.
 */
export function heldActionAfterSetup (request: FastifyRequest, now: Date): { label: string, url: string } | null {
  const held = waitingAction(request, now)
  return held === undefined ? null : { label: heldLabel(request.i18n, held), url: CONTINUE_PATH }
}

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
    // The step-up page says what happens next itself: it knows whether the person has a method to confirm with yet.
    await reply.redirect(HELD_STEP_UP, 303)
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
    const held = waitingAction(request, clock.now())
    if (held === undefined) {
      delete request.session.heldAction
      return reply.flashRedirect('/', request.i18n.t('stepup.nothing_waiting'), 'info')
    }
    if (!guard.hasFreshStepUp(changeContext(request, clock.now()))) {
      return reply.redirect(HELD_STEP_UP, 303)
    }
    reply.header('cache-control', 'no-store')
    const hidden = Object.entries(held.fields).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v) => ({ name, value: v })))
    const label = heldLabel(request.i18n, held)
    return reply.page('step-up-continue', {
      title: label,
      held: { path: held.path, label },
      hidden,
      shown: heldFieldsShown(request.i18n, hidden),
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
