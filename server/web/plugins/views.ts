import { fileURLToPath } from 'node:url'
import { Eta } from 'eta'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { csrfToken } from './csrf.ts'
import { assignInsteadOfSpread } from '../eta-assign.ts'
import type { Config } from '../../config.ts'
import { LOCALE_NAMES, type Localiser, type Translator } from '../../domain/i18n.ts'

/** The language a visitor chose before signing in (the footer's language links); signed-in users' choice is saved. */
export const LANGUAGE_COOKIE = 'mfa_lang'
const TRANSLATOR = Symbol('translator')

export const VIEWS_DIR = fileURLToPath(new URL('../../../views/', import.meta.url))

/** A template cannot wait: a value still being fetched (a store call left without await) is refused where it is passed. */
type NoPromises<D> = { [K in keyof D]: D[K] extends PromiseLike<unknown> ? never : D[K] }

declare module './session.ts' {
  interface SessionData {
    /** A one-time message for the next page shown (after a redirect). */
    flash?: { kind: 'ok' | 'info' | 'error', text: string }
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The reader's language and time zone: the user's saved choice, else (language) the visitor's cookie or the
     * browser's Accept-Language, else DEFAULT_LOCALE / DEFAULT_TIME_ZONE.
     */
    readonly i18n: Translator
    [TRANSLATOR]?: Translator
  }
  interface FastifyReply {
    /** Redirects (303) after a successful POST, with a message shown once on the next page. */
    flashRedirect(url: string, text: string, kind?: 'ok' | 'info' | 'error'): FastifyReply
    /** Renders views/<template>.eta inside the layout with the common context (user, csrf, sandbox). */
    page<D extends Record<string, unknown>>(template: string, data?: D & NoPromises<D>): FastifyReply
  }
}

/** Where the signed-in user stands (for the countdown banner); undefined when no campaign state exists yet. */
export interface Standing { state: string, deadline: Date | null, daysLeft: number | null, softBlocked: boolean }
export type StandingLookup = (userId: string) => Promise<Standing | undefined>

/**
 * Eta resolves a template's path (path joins, a JSON cache key) on every render and include. The answer depends only
 * on the name and the including file, never on the file's contents, so it is worked out once per pair.
 */
function withTemplatePathsResolvedOnce (eta: Eta): Eta {
  const resolve = eta.resolvePath
  const resolved = new Map<string, string>()
  eta.resolvePath = (template, options) => {
    const key = `${options?.filepath ?? ''}\0${template}`
    let file = resolved.get(key)
    if (file === undefined) {
      file = resolve.call(eta, template, options)
      resolved.set(key, file)
    }
    return file
  }
  return eta
}

/**
 * The page's CSRF token, made when a form first asks for it. A closure returned from here has no name to keep (the
 * `csrf: () => …` it replaces was renamed on every page by tsx's keepNames, an Object.defineProperty per request).
 */
function tokenFor (reply: FastifyReply): () => string {
  return () => csrfToken(reply)
}

export default fp<{ config: Config, localiser: Localiser }>(async (app, { config, localiser }) => {
  app.decorateRequest('i18n', {
    getter (this: FastifyRequest): Translator {
      // Worked out once per request, after authentication has set request.user.
      let translator = this[TRANSLATOR]
      if (translator === undefined) {
        const user = this.user
        const locale = localiser.negotiate(this.headers['accept-language'], user?.locale ?? this.cookies?.[LANGUAGE_COOKIE])
        translator = localiser.for({ locale, timeZone: user?.timeZone })
        this[TRANSLATOR] = translator
      }
      return translator
    }
  })
  const eta = withTemplatePathsResolvedOnce(new Eta({
    views: VIEWS_DIR,
    // Compiled templates are cached except in development, where edits should show on reload.
    cache: config.env !== 'development',
    autoEscape: true,
    plugins: [assignInsteadOfSpread]
  }))
  app.decorateReply('page', function (template: string, data: Record<string, unknown> = {}) {
    const reply = this
    const request = reply.request
    const session = request.session
    const flash = session?.flash
    if (flash !== undefined) delete session.flash
    const i18n = request.i18n
    // Object.assign, not a spread: see eta-assign.ts.
    const html = eta.render(template, Object.assign({ title: '' }, data, {
      t: i18n.t,
      fmt: i18n,
      locale: i18n.locale,
      languages: LOCALE_NAMES,
      user: request.user,
      standing: request.user === null ? undefined : request.standing,
      flash: flash ?? null,
      passSession: session?.auth?.passSession === true,
      // What opened a restricted session, to name it: a helpdesk pass or an e-mailed invitation.
      passKind: session?.auth?.passSession === true ? (session.auth.passKind ?? 'pass') : null,
      // The portal's own address, for pages that tell people where to go (e.g. read out over the phone).
      portalUrl: config.publicUrl.origin,
      sandbox: config.sandbox,
      path: request.url,
      // Lazy: only pages with a form set the CSRF cookie.
      csrf: tokenFor(reply)
    }))
    return reply.type('text/html; charset=utf-8').send(html)
  })
  app.decorateReply('flashRedirect', function (url: string, text: string, kind: 'ok' | 'info' | 'error' = 'ok') {
    this.request.session.flash = { kind, text }
    return this.redirect(url, 303)
  })
}, { name: 'views' })
