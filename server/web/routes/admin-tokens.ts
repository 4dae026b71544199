import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { API_SCOPES, TOKEN_EXPIRY_MAX_DAYS, TOKEN_NAME_MAX, tokenStatus, TokenValidationError, type ApiScope, type ApiToken, type TokenProblem } from '../../domain/api-tokens.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Translator } from '../../domain/i18n.ts'
import type { Actor } from '../../domain/users.ts'
import type { Services } from '../../wiring.ts'
import { automationServices } from '../../wiring-automation.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import { requestContext } from './auth.ts'

// Every field optional text: a missing or malformed value is shown next to its field, not as a bare 400 page.
const TokenBody = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 500 })),
  // One ticked box arrives as a string, several as an array (the default validator makes both an array).
  scopes: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 10 })),
  expiresInDays: Type.Optional(Type.String({ maxLength: 20 })),
  _csrf: Type.Optional(Type.String())
})
type TokenForm = Static<typeof TokenBody>
const TokenParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const CsrfOnly = Type.Object({ _csrf: Type.Optional(Type.String()) })

const FIELD_ORDER = ['name', 'scopes', 'expiresInDays']
/** What each scope allows, in words (locales/…/tokens.json; the OpenAPI document keeps SCOPE_LABELS in English). */
const SCOPE_KEYS: Record<ApiScope, string> = {
  'phones:write': 'tokens.scope_phones_write',
  'phones:write-privileged': 'tokens.scope_phones_write_privileged',
  'status:read': 'tokens.scope_status_read',
  'compliance:read': 'tokens.scope_compliance_read'
}
/** What each problem the rules find says at its field. */
const PROBLEM_KEYS: Record<TokenProblem, string> = {
  name_invalid: 'tokens.problem_name_invalid',
  name_taken: 'tokens.problem_name_taken',
  scopes_required: 'tokens.problem_scopes_required',
  expiry_invalid: 'tokens.problem_expiry_invalid'
}

interface FormValues { name: string, scopes: string[], expiresInDays: string }

/** Registered under /admin/tokens: create, list and revoke automation API tokens. Admins only. */
const adminTokenRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { tokens } = automationServices(services)
  const { clock } = services
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  function renderForm (request: FastifyRequest, reply: FastifyReply, values: FormValues, codes: Record<string, TokenProblem> = {}): FastifyReply {
    const { i18n } = request
    const fields = Object.fromEntries(Object.entries(codes).map(([field, code]) => [field, i18n.t(PROBLEM_KEYS[code], { max: field === 'name' ? TOKEN_NAME_MAX : TOKEN_EXPIRY_MAX_DAYS })]))
    const problems = FIELD_ORDER.filter((field) => fields[field] !== undefined).map((field) => ({ field, message: fields[field] }))
    return reply.page('admin/tokens/new', {
      title: i18n.t('tokens.new_title'),
      values,
      fields,
      problems,
      scopeChoices: scopeChoices(i18n),
      nameMax: TOKEN_NAME_MAX,
      expiryMax: TOKEN_EXPIRY_MAX_DAYS,
      error: problems.length > 0 ? i18n.t('tokens.correct_fields') : null
    })
  }

  app.get('/', async (request, reply) => {
    const now = clock.now()
    return reply.page('admin/tokens/index', { title: request.i18n.t('tokens.title'), tokens: (await tokens.list()).map((t) => describeToken(t, now)) })
  })

  app.get('/new', async (request, reply) => renderForm(request, reply, { name: '', scopes: [], expiresInDays: '90' }))

  app.post<{ Body: TokenForm }>('/', { schema: { body: TokenBody }, config: { stepUp: 'stepup.action.create_token' } }, async (request, reply) => {
    const values: FormValues = { name: request.body.name ?? '', scopes: request.body.scopes ?? [], expiresInDays: request.body.expiresInDays ?? '' }
    const days = values.expiresInDays.trim()
    try {
      const { token, secret } = await tokens.create({
        name: values.name,
        scopes: values.scopes,
        expiresInDays: days === '' ? null : /^\d{1,6}$/.test(days) ? Number(days) : Number.NaN
      }, actorOf(request))
      // Shown here once and never again: rendered in this response (not after a redirect, which would need the
      // token kept somewhere to show it), and kept out of every cache.
      reply.header('cache-control', 'no-store')
      return reply.page('admin/tokens/created', { title: request.i18n.t('tokens.created_title'), token: describeToken(token, clock.now()), secret, scripts: ['/static/js/copy.js'] })
    } catch (err) {
      if (err instanceof TokenValidationError) return renderForm(request, reply.code(400), values, err.problems)
      throw err
    }
  })

  app.get<{ Params: Static<typeof TokenParams> }>('/:id/revoke', { schema: { params: TokenParams } }, async (request, reply) => {
    const token = await tokens.find(request.params.id)
    if (token === undefined) return notFoundFor(request, reply)
    const described = describeToken(token, clock.now())
    if (token.revokedAt !== null) return reply.flashRedirect('/admin/tokens', request.i18n.t('tokens.already_revoked', { name: token.name }), 'info')
    return reply.page('admin/tokens/revoke', { title: request.i18n.t('tokens.revoke_title', { name: token.name }), token: described })
  })

  app.post<{ Params: Static<typeof TokenParams>, Body: Static<typeof CsrfOnly> }>('/:id/revoke', { schema: { params: TokenParams, body: CsrfOnly }, config: { stepUp: 'stepup.action.revoke_token' } }, async (request, reply) => {
    const token = await tokens.find(request.params.id)
    if (token === undefined) return notFoundFor(request, reply)
    try {
      await tokens.revoke(token.id, actorOf(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect('/admin/tokens', request.i18n.error(err), 'error')
    }
    return reply.flashRedirect('/admin/tokens', request.i18n.t('tokens.revoked', { name: token.name }))
  })
}

function actorOf (request: FastifyRequest): Actor {
  const user = request.user!
  return { id: user.id, label: user.email, ...requestContext(request) }
}

function scopeChoices (i18n: Translator): Array<{ value: ApiScope, label: string }> {
  return API_SCOPES.map((scope) => ({ value: scope, label: i18n.t(SCOPE_KEYS[scope]) }))
}

/** A token as the pages show it: the template words the status and writes the times in the reader's zone. */
function describeToken (token: ApiToken, now: Date) {
  return {
    id: token.id,
    name: token.name,
    scopes: token.scopes,
    status: tokenStatus(token, now),
    createdAt: token.createdAt,
    lastUsedAt: token.lastUsedAt,
    expiresAt: token.expiresAt,
    revokedAt: token.revokedAt
  }
}

export default adminTokenRoutes
