import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Clock } from '../../domain/clock.ts'
import { DomainError } from '../../domain/errors.ts'
import type { MethodLifecycle } from '../../domain/method-lifecycle.ts'
import { changeContext, requireUser } from '../plugins/auth.ts'
import { statusFor } from '../plugins/errors.ts'
import { homeModel, type HomeDeps } from './home.ts'

const MethodParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const RenameBody = Type.Object({ name: Type.String({ maxLength: 200 }), _csrf: Type.Optional(Type.String()) })
const TokenQuery = Type.Object({ token: Type.String({ maxLength: 100 }) })
const TokenBody = Type.Object({ token: Type.String({ maxLength: 100 }), _csrf: Type.Optional(Type.String()) })

/** Rename and remove methods, and the "This wasn't me" link from method-change emails. */
const methodRoutes: FastifyPluginAsync<HomeDeps & { lifecycle: MethodLifecycle, clock: Clock }> = async (app, deps) => {
  const { lifecycle, clock } = deps
  const options = { preHandler: requireUser, config: { passSession: true as const } }

  app.post<{ Params: Static<typeof MethodParams>, Body: Static<typeof RenameBody> }>('/methods/:id/rename', { ...options, schema: { params: MethodParams, body: RenameBody } }, async (request, reply) => {
    try {
      const method = await lifecycle.rename(request.user!, request.params.id, request.body.name)
      return reply.flashRedirect('/', request.i18n.t('methods.renamed', { name: method.name }))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.code(statusFor(err)).page('home', await homeModel(request.user!, deps, request.i18n, { error: request.i18n.error(err) }))
    }
  })

  app.post<{ Params: Static<typeof MethodParams> }>('/methods/:id/remove', { ...options, schema: { params: MethodParams } }, async (request, reply) => {
    try {
      const method = await lifecycle.remove(request.user!, request.params.id, changeContext(request, clock.now()))
      return reply.flashRedirect('/', request.i18n.t('methods.removed', { name: method.name }))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      if (err.code === 'step_up_required') return reply.flashRedirect('/step-up?next=/', request.i18n.t('methods.confirm_then_remove'), 'info')
      return reply.code(statusFor(err)).page('home', await homeModel(request.user!, deps, request.i18n, { error: request.i18n.error(err) }))
    }
  })

  // GET only shows what would happen: mail scanners follow links, and a GET must never revoke anything.
  app.get<{ Querystring: Static<typeof TokenQuery> }>('/methods/not-me', { ...options, schema: { querystring: TokenQuery } }, async (request, reply) => {
    const notice = await lifecycle.noticeFor(request.user!, request.query.token)
    return reply.page('methods/not-me', { title: request.i18n.t('methods.not_me_title'), notice, token: request.query.token })
  })

  app.post<{ Body: Static<typeof TokenBody> }>('/methods/not-me', { ...options, schema: { body: TokenBody } }, async (request, reply) => {
    const auth = request.session.auth!
    const { revoked, notice } = await lifecycle.reportNotMe(request.user!, request.body.token)
    // Every session of the account was just ended; this browser is the one reporting, so it goes on under a new id.
    await request.session.regenerate()
    request.session.auth = auth
    const text = revoked
      ? request.i18n.t('methods.not_me_thanks_revoked', { name: notice.methodName })
      : request.i18n.t('methods.not_me_thanks')
    return reply.flashRedirect('/', text)
  })
}

export default methodRoutes
