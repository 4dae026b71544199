import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { apiActor, type ApiCaller, type ApiScope } from '../../domain/api-tokens.ts'
import { DomainError } from '../../domain/errors.ts'
import { parseUserRef } from '../../domain/user-refs.ts'
import type { Services } from '../../wiring.ts'
import { automationServices } from '../../wiring-automation.ts'
import { complianceJson, iso, OPERATIONS, type BulkBody, type ComplianceQuery, type PhoneBody, type PrepopulateBody, type UserParams } from '../schemas/api.ts'
import { openApiDocument } from '../schemas/openapi.ts'
import { strictValidatorCompiler } from '../schemas/strict-validator.ts'
import { storageErrorAnswer } from '../plugins/storage-failures.ts'
import { requestContext } from './auth.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The API token behind this request (automation routes only). */
    apiCaller: ApiCaller | null
  }
}

export const API_PREFIX = '/api/v1'
const PRIVILEGED_PHONES_SCOPE: ApiScope = 'phones:write-privileged'
/** The bulk route takes up to 1000 rows; everything else keeps the app's default limit. */
const BULK_BODY_LIMIT = 1024 * 1024

const API_STATUS: Record<string, number> = { user_not_found: 404, invalid_token: 401, insufficient_scope: 403 }

function apiError (reply: FastifyReply, status: number, code: string, message: string, field?: string): FastifyReply {
  // RFC 6750: say which bearer problem it was, so generic clients know to fetch a new token or ask for more scope.
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="mfa-rollout", error="invalid_token"')
  return reply.code(status).send({ error: field === undefined ? { code, message } : { code, message, field } })
}

/**
 * The token guard, run at onRequest: before the body is read, so an unauthenticated caller cannot make the server
 * parse a megabyte, and before any validation message. Only the Authorization header counts; a session cookie alone
 * never does.
 */
function bearer (tokens: { authenticate(presented: string): Promise<ApiCaller> }, scope: ApiScope | null) {
  return async function (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '')
    if (match === null) {
      apiError(reply, 401, 'invalid_token', 'Send an API token in the Authorization header: "Authorization: Bearer mfr_…".')
      return
    }
    let caller: ApiCaller
    try {
      caller = await tokens.authenticate(match[1])
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      apiError(reply, 401, err.code, err.message)
      return
    }
    if (scope !== null && !caller.scopes.includes(scope)) {
      reply.header('www-authenticate', `Bearer realm="mfa-rollout", error="insufficient_scope", scope="${scope}"`)
      apiError(reply, 403, 'insufficient_scope', `This token may not do this: it needs the "${scope}" scope. Ask an administrator for a token that has it.`)
      return
    }
    request.apiCaller = caller
  }
}

/** The automation API under /api/v1: bearer-token automation (phones from HR feeds, status, compliance) and its OpenAPI document. */
const apiRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { tokens, userRefs, phones, compliance } = automationServices(services)
  const { engine } = services

  app.decorateRequest('apiCaller', null)
  app.setValidatorCompiler(strictValidatorCompiler)
  // JSON only: a form post (what a cross-site page could send) is refused as an unsupported media type.
  app.removeContentTypeParser(['application/x-www-form-urlencoded', 'text/plain'])
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof DomainError) return apiError(reply, API_STATUS[error.code] ?? 400, error.code, error.message)
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return apiError(reply, 413, 'payload_too_large', `The request body is too large: at most ${request.routeOptions.bodyLimit ?? 0} bytes.`)
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return apiError(reply, 400, 'invalid_json', 'The request body is not valid JSON.')
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return apiError(reply, 415, 'unsupported_media_type', 'Send the request body as application/json.')
    }
    if (error.validation !== undefined) {
      const { field, message } = describeInvalid(error)
      return apiError(reply, 400, 'invalid_request', message, field)
    }
    if (error instanceof SyntaxError && error.statusCode === 400) return apiError(reply, 400, 'invalid_json', 'The request body is not valid JSON.')
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return apiError(reply, error.statusCode, 'bad_request', 'That request could not be used.')
    }
    const storage = storageErrorAnswer(error)
    if (storage !== undefined) return apiError(reply, storage.status, storage.code, storage.message)
    request.log.error({ err: error }, 'unhandled error')
    return apiError(reply, 500, 'internal_error', `Something went wrong on our side; it has been logged with reference ${request.id}.`)
  })

  // An address under /api/v1 that names no route (or does not decode): the caller shows a credential first, as on
  // every route here (a token, or the session GET /api/v1/me answers to), then gets the documented error shape. The
  // scope holds no routes, so its hook runs only for its not-found handler (after the session is loaded).
  await app.register(async (scope) => {
    const credential = bearer(tokens, null)
    scope.addHook('preValidation', async (request, reply) => { if (request.user === null) await credential(request, reply) })
    scope.setNotFoundHandler({ preHandler: app.rateLimit({ max: 120, timeWindow: '1 minute' }) }, async (_request, reply) =>
      apiError(reply, 404, 'not_found', 'There is no such API route. See /api/v1/openapi.json for the routes there are.'))
  }, { prefix: API_PREFIX })

  // Generous for feeds and scripts, but a runaway loop or a token-guessing client is slowed down (429 + Retry-After).
  const guarded = (scope: ApiScope) => ({ onRequest: bearer(tokens, scope), config: { csrf: false as const, rateLimit: { max: 600, timeWindow: '1 minute' } } })
  const actor = (request: FastifyRequest) => apiActor(request.apiCaller!, requestContext(request))
  const via = (request: FastifyRequest) => ({ source: 'api', tokenId: request.apiCaller!.tokenId })

  const { setPhone, bulkPhones, userStatus, compliance: complianceOp, entraPhones, openapi } = OPERATIONS

  app.post<{ Body: Static<typeof PrepopulateBody> }>(API_PREFIX + entraPhones.url, { schema: entraPhones.schema, ...guarded(entraPhones.scope) }, async (request, reply) => {
    // Privileged users' MFA phones are out of an HR feed's reach: including them takes a second, admin-granted scope.
    const includePrivileged = request.body.includePrivileged === true
    if (includePrivileged && !request.apiCaller!.scopes.includes(PRIVILEGED_PHONES_SCOPE)) {
      reply.header('www-authenticate', `Bearer realm="mfa-rollout", error="insufficient_scope", scope="${PRIVILEGED_PHONES_SCOPE}"`)
      return apiError(reply, 403, 'insufficient_scope', `Including privileged users needs the "${PRIVILEGED_PHONES_SCOPE}" scope as well. Ask an administrator for a token that has it, or leave includePrivileged out to skip them.`)
    }
    const report = await services.entra?.phones.prepopulate({ dryRun: request.body.dryRun, fromDirectory: request.body.fromDirectory, includePrivileged, auditDetails: via(request) }, actor(request))
    if (report === undefined) return apiError(reply, 409, 'provider_not_configured', 'Entra ID is not connected to this portal (PROVIDERS does not include entra).')
    return report
  })

  app.put<{ Params: Static<typeof UserParams>, Body: Static<typeof PhoneBody> }>(API_PREFIX + setPhone.url, { schema: setPhone.schema, ...guarded(setPhone.scope) }, async (request) => {
    const result = await phones.setPhone(request.params.id, request.body.phone, actor(request), via(request))
    return { user: request.params.id, phone: result.phone, result: result.result }
  })

  app.post<{ Body: Static<typeof BulkBody> }>(API_PREFIX + bulkPhones.url, { schema: bulkPhones.schema, bodyLimit: BULK_BODY_LIMIT, ...guarded(bulkPhones.scope) }, async (request) => {
    const results = await phones.applyBulk(request.body.items, actor(request), via(request))
    const count = (result: string) => results.filter((r) => r.result === result).length
    return { updated: count('updated'), unchanged: count('unchanged'), errors: count('error'), results }
  })

  app.get<{ Params: Static<typeof UserParams> }>(API_PREFIX + userStatus.url, { schema: userStatus.schema, ...guarded(userStatus.scope) }, async (request, reply) => {
    const userId = await userRefs.resolve(parseUserRef(request.params.id))
    const row = userId === undefined ? undefined : await compliance.row(userId)
    if (userId === undefined || row === undefined) return apiError(reply, 404, 'user_not_found', 'There is no user with this id, email address or external id.')
    const standing = await engine.standing(userId)
    return {
      id: userId,
      provider: row.provider,
      state: standing?.state ?? null,
      deadline: iso(standing?.deadline ?? null),
      daysLeft: standing?.daysLeft ?? null,
      softBlocked: standing?.softBlocked ?? false,
      enrolled: row.enrolled,
      methods: row.methods,
      enforcedAt: iso(row.enforcedAt)
    }
  })

  app.get<{ Querystring: Static<typeof ComplianceQuery> }>(API_PREFIX + complianceOp.url, { schema: complianceOp.schema, ...guarded(complianceOp.scope) }, async (request) => {
    const page = await compliance.page(request.query.cursor ?? null, request.query.limit ?? 100)
    return { rows: page.rows.map(complianceJson), next: page.next }
  })

  // Built once: the schemas do not change while the process runs.
  const document = JSON.stringify(openApiDocument(Object.values(OPERATIONS), { prefix: API_PREFIX, version: '1' }))
  app.get(API_PREFIX + openapi.url, { schema: openapi.schema, config: { csrf: false } }, async (_request, reply) => {
    return reply.type('application/json; charset=utf-8').send(document)
  })
}

/** The field at fault, as "items.3.phone", and a sentence naming it. */
function describeInvalid (error: FastifyError): { field: string, message: string } {
  const first = error.validation?.[0]
  const part = error.validationContext ?? 'body'
  const path = (first?.instancePath ?? '').split('/').filter((s) => s !== '').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  const field = path.length === 0 ? part : path.join('.')
  const detail = first?.message ?? 'is not valid'
  if (detail === 'Unexpected property') return { field, message: `"${field}" is not a field this request accepts (${part}).` }
  return { field, message: path.length === 0 ? `The ${part} is not valid: ${detail}.` : `"${field}" is not valid (${part}): ${detail}.` }
}

export default apiRoutes
