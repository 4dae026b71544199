import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { escapeHtml, type Translator } from '../domain/i18n.ts'
import { catalogueLocaliser } from './english.ts'

// Errors raised before a request reaches a route, answered in the portal's words (app.ts passes these to Fastify's
// options): addresses that do not decode, and what the router or Node's HTTP parser refuse before any hook runs.
// The error pages themselves live in plugins/errors.ts.

/** A path whose percent-escapes do not decode (`%FF`, `%ED%A0%80`, a cut-off `%E0%A4%A`); the query is not judged. */
export function isUndecodableUrl (url: string): boolean {
  const query = url.indexOf('?')
  const path = query === -1 ? url : url.slice(0, query)
  if (!path.includes('%')) return false
  try {
    decodeURIComponent(path)
    return false
  } catch {
    return true
  }
}

/**
 * Fastify's rewriteUrl. An address whose path does not decode cannot be routed, and Fastify would answer it with
 * its own JSON 400 repeating the address, before any hook. Routed with its "%" escaped instead, it reaches its route
 * (or the not-found handler) and passes every hook like any request: the API's token check, CSRF, the portal's
 * headers. A preHandler hook of the error pages (plugins/errors.ts) then refuses it (400 bad_url) before any
 * handler sees the path.
 */
export function routableUrl (req: { url?: string }): string {
  const url = req.url ?? '/'
  if (!isUndecodableUrl(url)) return url
  const query = url.indexOf('?')
  return query === -1 ? url.replaceAll('%', '%25') : url.slice(0, query).replaceAll('%', '%25') + url.slice(query)
}

/** A refusal's words as catalogue keys: `title` for the page's heading, `message` for what to do. */
interface Refusal { status: number, code: string, title: string, message: string }

/**
 * The language of an answer given before Fastify has a request with a translator: from the Accept-Language the
 * client sent, if it could be read (no saved choice or cookie is looked at; English otherwise).
 */
function translatorFor (acceptLanguage: string | undefined): Translator {
  const localiser = catalogueLocaliser()
  return localiser.for({ locale: localiser.negotiate(acceptLanguage) })
}

/** A short answer that needs no template or hook: for errors raised before Fastify has a request to run them on. */
function plainAnswer (refused: Refusal, json: boolean, acceptLanguage?: string): { headers: Record<string, string>, body: string } {
  const local = translatorFor(acceptLanguage)
  // JSON keeps the English message, whoever asks; the page is in the client's language.
  const english = catalogueLocaliser().for({ locale: 'en' })
  const title = escapeHtml(local.t(refused.title))
  const body = json
    ? JSON.stringify({ error: { code: refused.code, message: english.t(refused.message) } })
    : [
        '<!doctype html>',
        `<html lang="${local.locale}">`,
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        `<title>${title} · ${escapeHtml(local.t('common.product'))}</title></head>`,
        `<body><main><h1>${title}</h1><p>${escapeHtml(local.t(refused.message))}</p><p><a href="/">${escapeHtml(local.t('pages.go_home'))}</a></p></main></body>`,
        '</html>',
        ''
      ].join('\n')
  return {
    headers: {
      'content-type': `${json ? 'application/json' : 'text/html'}; charset=utf-8`,
      'content-length': String(Buffer.byteLength(body)),
      'content-security-policy': 'default-src \'none\'; frame-ancestors \'none\'',
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store'
    },
    body
  }
}

/**
 * Fastify's frameworkErrors: what the router still refuses before any hook runs (a request target that is neither a
 * path nor an http(s) URL, such as `GET ftp://host/`; an async route constraint, unused here). Decorators and hooks
 * are not there yet, so the answer is the plain one; the address is not repeated.
 */
export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const refused: Refusal = error.code === 'FST_ERR_BAD_URL'
    ? { status: 400, code: 'bad_url', title: 'pages.title_bad_request', message: 'pages.bad_url' }
    : { status: 500, code: 'internal_error', title: 'pages.title_internal', message: 'pages.internal_error_short' }
  if (refused.status >= 500) request.log.error({ err: error }, 'framework error')
  const acceptLanguage = request.raw.headers['accept-language']
  const { headers, body } = plainAnswer(refused, (request.raw.url ?? '').startsWith('/api/'), typeof acceptLanguage === 'string' ? acceptLanguage : undefined)
  void reply.code(refused.status).headers(headers).send(body)
}

/** What Node's HTTP parser refuses, by its error code; anything else it refuses is a 400. */
const CLIENT_ERRORS: Record<string, Refusal> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'headers_too_large', title: 'pages.title_headers_too_large', message: 'pages.headers_too_large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', title: 'pages.title_timeout', message: 'pages.request_timeout' }
}
const CLIENT_ERROR: Refusal = { status: 400, code: 'bad_request', title: 'pages.title_bad_request', message: 'pages.not_http' }

/**
 * Fastify's clientErrorHandler: what Node's HTTP parser refuses before Fastify sees a request (headers over
 * maxHeaderSize, bytes that are not HTTP, a request that never finishes arriving). There is no request to route,
 * so no hooks run and no template renders: a fixed short answer in the portal's words, with its own strict headers.
 * The request line of the raw bytes, when it can be read, decides between the API's JSON and a page; nothing the
 * client sent is written back.
 */
export function clientErrorHandler (this: FastifyInstance, error: ConnectionError, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const refused = CLIENT_ERRORS[error.code ?? ''] ?? CLIENT_ERROR
  this.log.debug({ code: error.code }, 'client error')
  if (socket.writable) {
    // (Typed as a JSON-ified Buffer by Fastify; Node hands over the Buffer itself.)
    const packet: unknown = error.rawPacket
    const requestLine = Buffer.isBuffer(packet) ? packet.subarray(0, 2048).toString('latin1') : ''
    const target = /^[A-Z]+ (\S+) HTTP\//.exec(requestLine)?.[1] ?? ''
    // The language the client asked for, if its header arrived whole enough to read.
    const acceptLanguage = /\r\naccept-language:[ \t]*([^\r\n]{1,200})\r\n/i.exec(requestLine)?.[1]
    const { headers, body } = plainAnswer(refused, target.startsWith('/api/'), acceptLanguage)
    const head = Object.entries({ ...headers, connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`).join('')
    socket.write(`HTTP/1.1 ${refused.status} ${STATUS_CODES[refused.status] ?? 'Bad Request'}\r\n${head}\r\n${body}`)
  }
  socket.destroy(error)
}
