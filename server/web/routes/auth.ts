import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Clock } from '../../domain/clock.ts'
import { DomainError } from '../../domain/errors.ts'
import type { AccessPassService } from '../../domain/passes.ts'
import type { MethodStore } from '../../domain/methods.ts'
import { secondFactorRequirement, type SignInService } from '../../domain/signin.ts'
import { statusFor } from '../plugins/errors.ts'
import { safeNext } from '../next-url.ts'

const LoginQuery = Type.Object({
  next: Type.Optional(Type.String({ maxLength: 2048 })),
  ended: Type.Optional(Type.String({ maxLength: 20 })),
  signed_out: Type.Optional(Type.String({ maxLength: 5 }))
})

const LoginBody = Type.Object({
  email: Type.String({ maxLength: 320 }),
  password: Type.String({ maxLength: 1024 }),
  next: Type.Optional(Type.String({ maxLength: 2048 })),
  _csrf: Type.Optional(Type.String())
})

/** Why a session ended, as the sign-in page explains it (catalogue keys). */
const ENDED_MESSAGES: Record<string, string> = {
  idle: 'login.ended_idle',
  absolute: 'login.ended_absolute',
  pass: 'login.ended_pass'
}

export function requestContext (request: FastifyRequest): { ip: string, userAgent: string | null } {
  return { ip: request.ip, userAgent: request.headers['user-agent'] ?? null }
}

const PassBody = Type.Object({
  email: Type.String({ maxLength: 320 }),
  pass: Type.String({ maxLength: 64 }),
  _csrf: Type.Optional(Type.String())
})

// (entra) Which ways to sign in the page offers: local passwords can be turned off (PASSWORD_SIGNIN=false), and
// "Sign in with Microsoft" appears when ENTRA_REDIRECT_URI is set.
export interface SignInWays {
  passwordSignIn?: boolean
  microsoftSignIn?: boolean
}

const authRoutes: FastifyPluginAsync<{ signIn: SignInService, passes: AccessPassService, methods: MethodStore, clock: Clock, staffPasskeyRequired: boolean } & SignInWays> = async (app, { signIn, passes, methods, clock, staffPasskeyRequired, passwordSignIn = true, microsoftSignIn = false }) => {
  const ways = { passwordSignIn, microsoftSignIn }
  app.get<{ Querystring: Static<typeof LoginQuery> }>('/login', { schema: { querystring: LoginQuery } }, async (request, reply) => {
    if (request.user !== null) return reply.redirect(safeNext(request.query.next), 303)
    const ended = ENDED_MESSAGES[request.query.ended ?? '']
    return reply.page('login', {
      title: request.i18n.t('login.title'),
      email: '',
      next: safeNext(request.query.next),
      notice: request.query.signed_out !== undefined ? request.i18n.t('login.signed_out') : ended === undefined ? null : request.i18n.t(ended),
      error: null,
      ...ways,
      scripts: ['/static/js/passkey.js']
    })
  })

  app.post<{ Body: Static<typeof LoginBody> }>('/login', {
    schema: { body: LoginBody },
    config: { rateLimit: { max: 30, timeWindow: '1 minute' } }
  }, async (request, reply) => {
    const { email, password } = request.body
    const next = safeNext(request.body.next)
    if (!passwordSignIn) {
      return reply.code(403).page('login', { title: request.i18n.t('login.title'), email: '', next, notice: null, error: request.i18n.t('login.password_off'), ...ways, scripts: ['/static/js/passkey.js'] })
    }
    try {
      const { user, device } = await signIn.signIn(email, password, { ...requestContext(request), cookies: request.cookies })
      // The browser is known next time (its own failure count: domain/signin.ts); sent only to the sign-in pages.
      reply.setCookie(device.name, device.value, { path: '/login', httpOnly: true, sameSite: 'lax', secure: device.secure, maxAge: device.maxAgeSeconds })
      const secondFactor = secondFactorRequirement(user, (await methods.listFor(user.id)).map((m) => m.kind), staffPasskeyRequired)
      // A new session id at sign-in, so an id planted before sign-in (session fixation) is worthless.
      await request.session.regenerate()
      const now = clock.now().getTime()
      const owed = secondFactor !== 'none'
      request.session.auth = { userId: user.id, createdAt: now, lastSeenAt: now, secondFactorPending: owed ? true : undefined, passkeyOnly: secondFactor === 'passkey' ? true : undefined }
      return reply.redirect(owed ? `/step-up?next=${encodeURIComponent(next)}` : next, 303)
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      // A helpdesk pass typed into the password box: say where it goes instead of "do not match".
      const message = err.code === 'invalid_credentials' && await passes.isActivePass(email, password)
        ? request.i18n.t('login.pass_typed_as_password')
        : request.i18n.error(err)
      return reply.code(statusFor(err)).page('login', { title: request.i18n.t('login.title'), email, next, notice: null, error: message, ...ways, scripts: ['/static/js/passkey.js'] })
    }
  })

  app.get('/login/pass', async (request, reply) => {
    if (request.user !== null) return reply.redirect('/', 303)
    return reply.page('login-pass', { title: request.i18n.t('login.pass_title'), email: '', error: null })
  })

  // A temporary access pass opens a restricted session: enrollment pages and sign-out only.
  app.post<{ Body: Static<typeof PassBody> }>('/login/pass', {
    schema: { body: PassBody },
    config: { rateLimit: { max: 30, timeWindow: '1 minute' } }
  }, async (request, reply) => {
    try {
      const { user, expiresAt } = await passes.signIn(request.body.email, request.body.pass, requestContext(request))
      await request.session.regenerate()
      const now = clock.now().getTime()
      request.session.auth = { userId: user.id, createdAt: now, lastSeenAt: now, passSession: true, passUntil: expiresAt.getTime() }
      return reply.redirect('/', 303)
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.code(statusFor(err)).page('login-pass', { title: request.i18n.t('login.pass_title'), email: request.body.email, error: request.i18n.error(err) })
    }
  })

  app.post('/logout', { config: { passSession: true, secondFactor: true } }, async (request, reply) => {
    if (request.user !== null) await signIn.recordSignOut(request.user, requestContext(request))
    await request.session.destroy()
    return reply.redirect('/login?signed_out=1', 303)
  })
}

export default authRoutes
