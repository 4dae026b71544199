import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { DomainError } from '../../domain/errors.ts'
import { storageErrorAnswer } from './storage-failures.ts'
import { BAD_URL_MESSAGE, isUndecodableUrl } from '../framework-errors.ts'

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

const TITLES: Record<number, string> = {
  400: 'That request could not be used',
  401: 'Please sign in',
  403: 'You do not have access to this page',
  404: 'Page not found',
  413: 'That was too large',
  415: 'That request could not be used',
  429: 'Too many attempts',
  500: 'Something went wrong on our side',
  503: 'The portal cannot save changes right now'
}

export function sendError (request: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  reply.code(status)
  if (wantsJson(request)) return reply.send({ error: { code, message } })
  return reply.page('errors/error', {
    title: TITLES[status] ?? TITLES[400],
    status,
    heading: TITLES[status] ?? TITLES[400],
    message,
    requestId: status >= 500 ? request.id : null
  })
}

/** A forged or stale form: a missing or wrong CSRF token, or a request sent from another site (plugins/csrf.ts). */
const FORGED = { status: 403, code: 'csrf_invalid', message: 'This form has expired or was not sent from this site. Go back, reload the page and try again.' }

export function refuseForgedRequest (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(request, reply, FORGED.status, FORGED.code, FORGED.message)
}

/** Fastify's own and plugins' error codes that users can cause, in plain words. */
function describe (error: FastifyError): { status: number, code: string, message: string } | undefined {
  switch (error.code) {
    case 'FST_CSRF_MISSING_SECRET':
    case 'FST_CSRF_INVALID_TOKEN':
      return FORGED
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'body_too_large', message: 'What you sent is larger than this page accepts.' }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'unsupported_media_type', message: 'This page does not accept that kind of content.' }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'malformed_json', message: 'The request body is not valid JSON.' }
  }
  // A full or failing disk (plugins/storage-failures.ts): 503, not a 500 naming SQLite.
  const storage = storageErrorAnswer(error)
  if (storage !== undefined) return storage
  if (error.statusCode === 429) {
    return { status: 429, code: 'rate_limited', message: 'Too many requests from your address. Wait a minute and try again.' }
  }
  if (error.validation !== undefined) {
    return { status: 400, code: 'invalid_input', message: `Some of what you sent is not valid: ${error.message}.` }
  }
  if (error instanceof SyntaxError && error.statusCode === 400) {
    return { status: 400, code: 'malformed_json', message: 'The request body is not valid JSON.' }
  }
  return undefined
}

export function notFoundFor (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(request, reply, 404, 'not_found', 'There is nothing at this address. Check the link, or start again from the home page.')
}

/** Error and not-found pages. A 5xx never shows its message or stack; it is logged with the request id. */
export default fp(async (app) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof DomainError) {
      return sendError(request, reply, statusFor(error), error.code, error.message)
    }
    const known = describe(error)
    if (known !== undefined) {
      request.log.info({ code: known.code }, 'request refused')
      return sendError(request, reply, known.status, known.code, known.message)
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(request, reply, error.statusCode, 'bad_request', 'That request could not be used.')
    }
    request.log.error({ err: error }, 'unhandled error')
    return sendError(request, reply, 500, 'internal_error', 'The problem has been logged. Please try again in a moment; if it keeps happening, tell your helpdesk the reference below.')
  })

  // An address that did not decode (see routableUrl) is refused once who is asking is settled (CSRF, the session,
  // the API's token and credential checks), before any handler looks at the path.
  app.addHook('preHandler', async (request, reply) => {
    if (request.originalUrl !== request.url && isUndecodableUrl(request.originalUrl)) return sendError(request, reply, 400, 'bad_url', BAD_URL_MESSAGE)
  })

  app.setNotFoundHandler({ preHandler: app.rateLimit({ max: 120, timeWindow: '1 minute' }) }, notFoundFor)
}, { name: 'error-pages', dependencies: ['rate-limit', 'views'] })
