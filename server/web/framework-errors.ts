import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

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

export const BAD_URL_MESSAGE = 'That address is not valid: part of it cannot be read. Check the link, or start again from the home page.'

interface Refusal { status: number, code: string, title: string, message: string }

/** A short answer that needs no template or hook: for errors raised before Fastify has a request to run them on. */
function plainAnswer (refused: Refusal, json: boolean): { headers: Record<string, string>, body: string } {
  const body = json
    ? JSON.stringify({ error: { code: refused.code, message: refused.message } })
    : [
        '<!doctype html>',
        '<html lang="en">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        `<title>${refused.title} · MFA enrollment</title></head>`,
        `<body><main><h1>${refused.title}</h1><p>${refused.message}</p><p><a href="/">Go to the home page</a></p></main></body>`,
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
    ? { status: 400, code: 'bad_url', title: 'That request could not be used', message: BAD_URL_MESSAGE }
    : { status: 500, code: 'internal_error', title: 'Something went wrong on our side', message: 'The problem has been logged. Please try again in a moment.' }
  if (refused.status >= 500) request.log.error({ err: error }, 'framework error')
  const { headers, body } = plainAnswer(refused, (request.raw.url ?? '').startsWith('/api/'))
  void reply.code(refused.status).headers(headers).send(body)
}

/** What Node's HTTP parser refuses, by its error code; anything else it refuses is a 400. */
const CLIENT_ERRORS: Record<string, Refusal> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'headers_too_large',
    title: 'That request was too large',
    message: 'Your browser sent more header data (usually cookies) than this site accepts. Clear this site\'s cookies and try again.'
  },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', title: 'That took too long', message: 'The request did not arrive in time. Please try again.' }
}
const CLIENT_ERROR: Refusal = { status: 400, code: 'bad_request', title: 'That request could not be used', message: 'What your browser or program sent is not a valid HTTP request.' }

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
    const { headers, body } = plainAnswer(refused, target.startsWith('/api/'))
    const head = Object.entries({ ...headers, connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`).join('')
    socket.write(`HTTP/1.1 ${refused.status} ${STATUS_CODES[refused.status] ?? 'Bad Request'}\r\n${head}\r\n${body}`)
  }
  socket.destroy(error)
}
