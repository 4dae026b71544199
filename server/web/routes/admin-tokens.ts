import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { API_SCOPES, SCOPE_LABELS, TOKEN_EXPIRY_MAX_DAYS, TOKEN_NAME_MAX, tokenStatus, TokenValidationError, type ApiToken } from '../../domain/api-tokens.ts'
import { DomainError } from '../../domain/errors.ts'
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
const SCOPE_CHOICES = API_SCOPES.map((scope) => ({ value: scope, label: SCOPE_LABELS[scope] }))
const STATUS_LABELS = { active: 'Active', expired: 'Expired', revoked: 'Revoked' } as const

interface FormValues { name: string, scopes: string[], expiresInDays: string }

/** Registered under /admin/tokens: create, list and revoke automation API tokens. Admins only. */
const adminTokenRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { tokens } = automationServices(services)
  const { clock } = services
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  function renderForm (reply: FastifyReply, values: FormValues, fields: Record<string, string> = {}): FastifyReply {
    const problems = FIELD_ORDER.filter((field) => fields[field] !== undefined).map((field) => ({ field, message: fields[field] }))
    return reply.page('admin/tokens/new', {
      title: 'New API token',
      values,
      fields,
      problems,
      scopeChoices: SCOPE_CHOICES,
      nameMax: TOKEN_NAME_MAX,
      expiryMax: TOKEN_EXPIRY_MAX_DAYS,
      error: problems.length > 0 ? 'Please correct the fields marked below.' : null
    })
  }

  app.get('/', async (_request, reply) => {
    const now = clock.now()
    return reply.page('admin/tokens/index', { title: 'API tokens', tokens: tokens.list().map((t) => describeToken(t, now)) })
  })

  app.get('/new', async (_request, reply) => renderForm(reply, { name: '', scopes: [], expiresInDays: '90' }))

  app.post<{ Body: TokenForm }>('/', { schema: { body: TokenBody }, config: { stepUp: 'Create the API token' } }, async (request, reply) => {
    const values: FormValues = { name: request.body.name ?? '', scopes: request.body.scopes ?? [], expiresInDays: request.body.expiresInDays ?? '' }
    const days = values.expiresInDays.trim()
    try {
      const { token, secret } = tokens.create({
        name: values.name,
        scopes: values.scopes,
        expiresInDays: days === '' ? null : /^\d{1,6}$/.test(days) ? Number(days) : Number.NaN
      }, actorOf(request))
      // Shown here once and never again: rendered in this response (not after a redirect, which would need the
      // token kept somewhere to show it), and kept out of every cache.
      reply.header('cache-control', 'no-store')
      return reply.page('admin/tokens/created', { title: 'Token created', token: describeToken(token, clock.now()), secret, scripts: ['/static/js/copy.js'] })
    } catch (err) {
      if (err instanceof TokenValidationError) return renderForm(reply.code(400), values, err.fields)
      throw err
    }
  })

  app.get<{ Params: Static<typeof TokenParams> }>('/:id/revoke', { schema: { params: TokenParams } }, async (request, reply) => {
    const token = tokens.find(request.params.id)
    if (token === undefined) return notFoundFor(request, reply)
    const described = describeToken(token, clock.now())
    if (token.revokedAt !== null) return reply.flashRedirect('/admin/tokens', `"${token.name}" is already revoked.`, 'info')
    return reply.page('admin/tokens/revoke', { title: `Revoke ${token.name}`, token: described })
  })

  app.post<{ Params: Static<typeof TokenParams>, Body: Static<typeof CsrfOnly> }>('/:id/revoke', { schema: { params: TokenParams, body: CsrfOnly }, config: { stepUp: 'Revoke the API token' } }, async (request, reply) => {
    const token = tokens.find(request.params.id)
    if (token === undefined) return notFoundFor(request, reply)
    try {
      tokens.revoke(token.id, actorOf(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect('/admin/tokens', err.message, 'error')
    }
    return reply.flashRedirect('/admin/tokens', `Revoked "${token.name}". Programs using it are refused from now on.`)
  })
}

function actorOf (request: FastifyRequest): Actor {
  const user = request.user!
  return { id: user.id, label: user.email, ...requestContext(request) }
}

/** "2026-11-25 09:00 UTC": tokens live for months, the minute is enough. */
function when (date: Date | null): string | null {
  return date === null ? null : `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

function describeToken (token: ApiToken, now: Date) {
  const status = tokenStatus(token, now)
  return {
    id: token.id,
    name: token.name,
    scopes: token.scopes,
    status,
    statusLabel: STATUS_LABELS[status],
    created: when(token.createdAt),
    createdIso: token.createdAt.toISOString(),
    lastUsed: when(token.lastUsedAt),
    lastUsedIso: token.lastUsedAt?.toISOString() ?? null,
    expires: when(token.expiresAt),
    expiresIso: token.expiresAt?.toISOString() ?? null,
    revoked: when(token.revokedAt)
  }
}

export default adminTokenRoutes
