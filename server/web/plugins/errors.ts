import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { DomainError } from '../../domain/errors.ts'
import type { MessageValues } from '../../domain/i18n.ts'
import { english } from '../english.ts'
import { storageErrorAnswer } from './storage-failures.ts'
import { isUndecodableUrl } from '../framework-errors.ts'

/** The one table from domain error codes to HTTP statuses; anything not listed is a 400. */
const STATUS_BY_CODE: Record<string, number> = {
  invalid_credentials: 401,
  unauthenticated: 401,
  forbidden: 403,
  locked_out: 429,
  user_not_found: 404,
  not_found: 404,
  user_exists: 409,
  method_not_found: 404,
  notice_not_found: 404,
  notice_used: 410,
  notice_expired: 410,
  last_method_required: 409,
  step_up_required: 403,
  untrusted_network: 403,
  passkey_rejected: 400,
  challenge_expired: 400,
  passkey_exists: 409,
  authenticator_not_allowed: 403,
  wrong_code: 400,
  code_already_used: 400,
  setup_expired: 400,
  invalid_pass: 401,
  self_issue: 403,
  self_action: 403,
  extension_over_budget: 400,
  no_deadline: 409,
  pass_session_restricted: 403,
  second_factor_missing: 403,
  phone_exists: 409,
  resend_too_soon: 429,
  too_many_codes: 429,
  sms_failed: 502
}

export function statusFor (error: DomainError): number {
  return STATUS_BY_CODE[error.code] ?? 400
}

/** API callers and scripts get JSON; browsers get pages. */
export function wantsJson (request: FastifyRequest): boolean {
  if (request.url.startsWith('/api/')) return true
  // A script that sent JSON reads JSON back, whatever its Accept header says.
  if ((request.headers['content-type'] ?? '').startsWith('application/json')) return true
  const accept = request.headers.accept ?? ''
  return accept.includes('application/json') && !accept.includes('text/html')
}

/** The error page's heading per status (catalogue keys). */
const TITLES: Record<number, string> = {
  400: 'pages.title_bad_request',
  401: 'pages.title_sign_in',
  403: 'pages.title_forbidden',
  404: 'pages.title_not_found',
  413: 'pages.title_too_large',
  415: 'pages.title_bad_request',
  429: 'pages.title_too_many',
  500: 'pages.title_internal',
  503: 'pages.title_unavailable'
}

/**
 * What a refusal says: a catalogue message (`{ key, values }`), a rule's refusal (a DomainError: `errors.<code>`
 * with its details), or words a route has not moved to the catalogue yet (shown as they are).
 */
export type Refusal = string | { key: string, values?: MessageValues } | { code: string, message: string, details?: Record<string, unknown> }

/** A refusal in English (for JSON answers and logs) and in the reader's language (for pages). */
function wordsOf (request: FastifyRequest, refusal: Refusal): { english: string, local: string } {
  if (typeof refusal === 'string') return { english: refusal, local: refusal }
  if ('key' in refusal) return { english: english().t(refusal.key, refusal.values), local: request.i18n.t(refusal.key, refusal.values) }
  return { english: refusal.message, local: request.i18n.error(refusal) }
}

/**
 * Answers a refusal: JSON `{ error: { code, message } }` (the message stays English, whoever asks) or the error page
 * in the reader's language. The portal's own scripts (outside /api/, sending the x-csrf-token header as
 * static/js/passkey.js does) also get `display`, the message in the reader's language, to show as it is.
 */
export function sendError (request: FastifyRequest, reply: FastifyReply, status: number, code: string, message: Refusal): FastifyReply {
  reply.code(status)
  const words = wordsOf(request, message)
  if (wantsJson(request)) {
    const ownScript = !request.url.startsWith('/api/') && request.headers['x-csrf-token'] !== undefined
    return reply.send({ error: ownScript ? { code, message: words.english, display: words.local } : { code, message: words.english } })
  }
  const title = request.i18n.t(TITLES[status] ?? TITLES[400]!)
  return reply.page('errors/error', {
    title,
    status,
    heading: title,
    message: words.local,
    requestId: status >= 500 ? request.id : null
  })
}

/** A forged or stale form: a missing or wrong CSRF token, or a request sent from another site (plugins/csrf.ts). */
const FORGED = { status: 403, code: 'csrf_invalid', message: { key: 'pages.csrf_invalid' } }

export function refuseForgedRequest (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(request, reply, FORGED.status, FORGED.code, FORGED.message)
}

/** Fastify's own and plugins' error codes that users can cause, in plain words. */
function describe (error: FastifyError): { status: number, code: string, message: Refusal } | undefined {
  switch (error.code) {
    case 'FST_CSRF_MISSING_SECRET':
    case 'FST_CSRF_INVALID_TOKEN':
      return FORGED
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'body_too_large', message: { key: 'pages.body_too_large' } }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'unsupported_media_type', message: { key: 'pages.unsupported_media_type' } }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'malformed_json', message: { key: 'pages.malformed_json' } }
  }
  // A full or failing disk (plugins/storage-failures.ts): 503, not a 500 naming SQLite.
  const storage = storageErrorAnswer(error)
  if (storage !== undefined) return { status: storage.status, code: storage.code, message: { key: storage.key } }
  if (error.statusCode === 429) {
    return { status: 429, code: 'rate_limited', message: { key: 'pages.rate_limited' } }
  }
  if (error.validation !== undefined) {
    // Fastify's own wording of what was wrong (English, naming the field) goes in as it is.
    return { status: 400, code: 'invalid_input', message: { key: 'pages.invalid_input', values: { detail: error.message } } }
  }
  if (error instanceof SyntaxError && error.statusCode === 400) {
    return { status: 400, code: 'malformed_json', message: { key: 'pages.malformed_json' } }
  }
  return undefined
}

export function notFoundFor (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(request, reply, 404, 'not_found', { key: 'pages.not_found' })
}

/** Error and not-found pages. A 5xx never shows its message or stack; it is logged with the request id. */
export default fp(async (app) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof DomainError) {
      return sendError(request, reply, statusFor(error), error.code, error)
    }
    const known = describe(error)
    if (known !== undefined) {
      request.log.info({ code: known.code }, 'request refused')
      return sendError(request, reply, known.status, known.code, known.message)
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(request, reply, error.statusCode, 'bad_request', { key: 'pages.bad_request' })
    }
    request.log.error({ err: error }, 'unhandled error')
    return sendError(request, reply, 500, 'internal_error', { key: 'pages.internal_error' })
  })

  // An address that did not decode (see routableUrl) is refused once who is asking is settled (CSRF, the session,
  // the API's token and credential checks), before any handler looks at the path.
  app.addHook('preHandler', (request, reply, done) => {
    if (request.originalUrl !== request.url && isUndecodableUrl(request.originalUrl)) {
      sendError(request, reply, 400, 'bad_url', { key: 'pages.bad_url' })
      return
    }
    done()
  })

  app.setNotFoundHandler({ preHandler: app.rateLimit({ max: 120, timeWindow: '1 minute' }) }, notFoundFor)
}, { name: 'error-pages', dependencies: ['rate-limit', 'views'] })
