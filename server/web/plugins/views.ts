import { isAscii } from 'node:buffer'
import { fileURLToPath } from 'node:url'
import { Eta } from 'eta'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { csrfToken } from './csrf.ts'
import { fieldAria } from '../field-aria.ts'
import { innerMap } from '../inner-map.ts'
import { sharedTemplateData } from '../eta-data.ts'
import type { Config } from '../../config.ts'
import { escapeHtml, LOCALE_NAMES, scriptJson, type Localiser, type Translator } from '../../domain/i18n.ts'

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
 * on the name and the including file, never on the file's contents, so it is worked out once per pair, and found by
 * the including file's path (the string this returned for it) and then by the name: strings whose hashes V8 keeps,
 * where one key joined from both afresh had to be hashed again for each of a page's templates.
 */
function withTemplatePathsResolvedOnce (eta: Eta): Eta {
  const resolve = eta.resolvePath
  const resolved = new Map<string, Map<string, string>>()
  eta.resolvePath = (template, options) => {
    const paths = innerMap(resolved, options?.filepath ?? '')
    let file = paths.get(template)
    if (file === undefined) {
      file = resolve.call(eta, template, options)
      paths.set(template, file)
    }
    return file
  }
  return eta
}

/**
 * A page as it goes on the wire. Node writes a string out as UTF-8 one character at a time (on the home page, a tenth
 * of all the instructions a request takes); a page that is all ASCII, as most are (escapeHtml writes characters beyond Latin-1 as
 * references), is the same bytes in Latin-1, which is copied as it is. A page with other characters (é, ß) goes as text.
 */
function onTheWire (html: string): Buffer | string {
  const bytes = Buffer.from(html, 'latin1')
  return isAscii(bytes) ? bytes : html
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
    // Characters beyond Latin-1 as references too, so that a page is one byte a character (escapeHtml says why).
    escapeFunction: (value: unknown) => escapeHtml(String(value)),
    plugins: [sharedTemplateData]
  }))
  app.decorateReply('page', function (template: string, data: Record<string, unknown> = {}) {
    const reply = this
    const request = reply.request
    const session = request.session
    const flash = session?.flash
    if (flash !== undefined) delete session.flash
    const i18n = request.i18n
    // The page's fields, then the common ones (which win), added one by one by name: a spread would keep the object
    // alive into the old generation, and Object.assign of this many fields would make it a hash table (eta-data.ts).
    const it: Record<string, unknown> = Object.assign({ title: '' }, data)
    it.t = i18n.t
    it.fmt = i18n
    it.locale = i18n.locale
    it.languages = LOCALE_NAMES
    it.user = request.user
    it.standing = request.user === null ? undefined : request.standing
    it.flash = flash ?? null
    it.passSession = session?.auth?.passSession === true
    // What opened a restricted session, to name it: a helpdesk pass or an e-mailed invitation.
    it.passKind = session?.auth?.passSession === true ? (session.auth.passKind ?? 'pass') : null
    // The portal's own address, for pages that tell people where to go (e.g. read out over the phone).
    it.portalUrl = config.publicUrl.origin
    it.sandbox = config.sandbox
    it.path = request.url
    // Lazy: only pages with a form set the CSRF cookie. Templates print it raw (`<%~ it.csrf() %>`): a masked token is
    // written in base64url's 64 characters only (masked-token.ts), and escaping it scanned its 192 for every form.
    it.csrf = tokenFor(reply)
    it.scriptJson = scriptJson
    it.fieldAria = fieldAria
    return reply.type('text/html; charset=utf-8').send(onTheWire(eta.render(template, it)))
  })
  app.decorateReply('flashRedirect', function (url: string, text: string, kind: 'ok' | 'info' | 'error' = 'ok') {
    this.request.session.flash = { kind, text }
    return this.redirect(url, 303)
  })
}, { name: 'views' })
