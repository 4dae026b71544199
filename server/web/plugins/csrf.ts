import { createHash } from 'node:crypto'
import csrf from '@fastify/csrf-protection'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.ts'
import { refuseForgedRequest } from './errors.ts'
import { innerMap } from '../inner-map.ts'
import { maskToken, prepareToken, unmaskToken, type PreparedToken } from '../masked-token.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes authenticated by a bearer token (no cookie) opt out of CSRF checks. */
    csrf?: false
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Every state-changing request carries a token: forms send `_csrf`, scripts the `x-csrf-token` header. Checked in
 * preValidation: the body is parsed by then, and a forged request is refused before anything looks at what it
 * sent (the body's schema, the step-up that holds console actions).
 *
 * The token's secret lives in its own signed, HttpOnly cookie (`__Host-` over https, so no sibling host can set
 * it), not in the session: an anonymous visitor who only looks at the sign-in page leaves no session row behind.
 * Once signed in, tokens are also bound to the session id through an HMAC keyed by the server: a secret planted in
 * someone's browser does not let anyone mint a token for their session, and every new session id (sign-in,
 * step-up) voids the tokens of the pages rendered before it.
 *
 * A page's token is masked afresh for every response (masked-token.ts): what the forms send back is unmasked before
 * @fastify/csrf checks it.
 *
 * Before the token, the request's own word on where it comes from is checked (foreignOrigin): a request from
 * another site is refused even with a valid token. Both answer the same 403.
 */
export default fp<{ config: Config }>(async (app, { config }) => {
  const cookieKey = config.session.secureCookie ? '__Host-mfa_csrf' : 'mfa_csrf'
  app.decorate(TOKENS, { cookieKey, remembered: new TokenMemory() })
  await app.register(csrf, {
    sessionPlugin: '@fastify/cookie',
    cookieKey,
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'lax', secure: config.session.secureCookie, signed: true },
    getToken: (request) => unmaskToken((request.body as { _csrf?: unknown } | undefined)?._csrf ?? request.headers['x-csrf-token']),
    getUserInfo: csrfBinding,
    csrfOpts: { hmacKey: createHash('sha256').update(`csrf-binding:${config.sessionSecret}`).digest() }
  })
  const ownOrigin = config.publicUrl.origin
  app.addHook('preValidation', (request, reply, done) => {
    if (SAFE_METHODS.has(request.method) || request.routeOptions.config.csrf === false) {
      done()
      return
    }
    const foreign = foreignOrigin(request, ownOrigin)
    if (foreign !== null) {
      request.log.warn({ ...foreign, expected: ownOrigin }, 'request from another site refused')
      refuseForgedRequest(request, reply)
      return
    }
    app.csrfProtection(request, reply, done)
  })
}, { name: 'csrf', dependencies: ['session'] })

/**
 * A second line of defence, independent of the token: a browser says where a request comes from (Origin on every
 * POST, Sec-Fetch-Site), and anything but the portal's own origin (PUBLIC_URL) is refused, "null" included (a
 * sandboxed frame, a redirect from another site). Sec-Fetch-Site "same-site" is refused too: a sibling host is
 * another site as far as the portal is concerned. A request that says neither (an old browser, a script) is left
 * to the token. Returns what was sent, for the log, or null when nothing says "another site".
 *
 * One "null" is the portal's own: a page served with `Referrer-Policy: no-referrer` makes the browser send
 * `Origin: null` on its forms, and then Sec-Fetch-Site, which no page can set, says "same-origin". (The portal's
 * pages use same-origin, the invitation page included, so browsers without Sec-Fetch-Site send the real Origin.)
 */
function foreignOrigin (request: FastifyRequest, ownOrigin: string): { origin?: string, secFetchSite?: string } | null {
  const origin = request.headers.origin
  const site = request.headers['sec-fetch-site']
  const foreignByOrigin = origin !== undefined && origin !== ownOrigin && !(origin === 'null' && site === 'same-origin')
  const foreignBySite = site === 'cross-site' || site === 'same-site'
  if (!foreignByOrigin && !foreignBySite) return null
  return { origin: origin?.slice(0, 200), secFetchSite: site?.slice(0, 20) }
}

/** What a token is bound to: the signed-in session's id, or the same fixed value for everyone before sign-in. */
function csrfBinding (request: FastifyRequest): string {
  const session = signedInSession(request)
  return session === '' ? 'signed-out' : `session:${session}`
}

/** The signed-in session's id, or '' before sign-in (no session id is empty). */
function signedInSession (request: FastifyRequest): string {
  return request.session?.auth === undefined ? '' : request.session.sessionId
}

const TOKENS = Symbol('csrf tokens')
declare module 'fastify' {
  interface FastifyInstance {
    /** The CSRF cookie's name, and the tokens made for the secrets it carried (unmaskedToken). */
    [TOKENS]: { cookieKey: string, remembered: TokenMemory }
  }
}

const tokens = new WeakMap<FastifyReply, string>()

/**
 * The token for the forms of the page being rendered, masked for this response: one per response, since a visitor
 * without the cookie yet gets a new secret with each call and only the last one set would stay.
 */
export function csrfToken (reply: FastifyReply): string {
  let token = tokens.get(reply)
  if (token === undefined) {
    token = maskToken(unmaskedToken(reply))
    tokens.set(reply, token)
  }
  return token
}

/**
 * @fastify/csrf's token for the secret the visitor presented and their binding, ready to mask. Making one is two
 * HMAC-SHA256 through OpenSSL, whose code is cold by the time a request reaches it: one per page was about a sixth of
 * the home page's CPU time. A token made for a secret and a binding stays valid for them, so one is made per pair and
 * remembered (csrfToken masks it for each page): a pure-function memory, like the cookie signer's. Nothing about a
 * session is kept; a session that ends is gone just the same, and its tokens name its id, which no other session
 * gets. Only secrets in a cookie that carries our signature are remembered; once `TOKENS_REMEMBERED` are, the memory
 * starts again empty.
 */
const TOKENS_REMEMBERED = 10_000

function unmaskedToken (reply: FastifyReply): PreparedToken {
  const request = reply.request
  const { cookieKey, remembered } = request.server[TOKENS]
  const cookie = request.cookies[cookieKey]
  // Without a genuine secret cookie, generateCsrf makes a new secret and sets its cookie: nothing to remember yet.
  if (cookie === undefined || !reply.unsignCookie(cookie).valid) return prepareToken(reply.generateCsrf({ userInfo: csrfBinding(request) }))
  const session = signedInSession(request)
  let token = remembered.get(cookie, session)
  if (token === undefined) {
    token = prepareToken(reply.generateCsrf({ userInfo: csrfBinding(request) }))
    remembered.set(cookie, session, token)
  }
  return token
}

/**
 * The remembered tokens, by the cookie that carried their secret and then by the session they are bound to ('' before
 * sign-in): found by strings the request already holds, whose hashes V8 has kept since they were first looked up (a
 * key joined from the two afresh for every page had to be hashed every time, its length over again).
 */
class TokenMemory {
  private readonly byCookie = new Map<string, Map<string, PreparedToken>>()
  private size = 0

  get (cookie: string, session: string): PreparedToken | undefined {
    return this.byCookie.get(cookie)?.get(session)
  }

  set (cookie: string, session: string, token: PreparedToken): void {
    if (this.size >= TOKENS_REMEMBERED) {
      this.byCookie.clear()
      this.size = 0
    }
    innerMap(this.byCookie, cookie).set(session, token)
    this.size++
  }
}
