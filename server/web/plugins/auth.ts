import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config.ts'
import type { SessionAuth } from '../../db/sessions.ts'
import type { Clock } from '../../domain/clock.ts'
import { standingFrom } from '../../domain/engine.ts'
import type { ChangeContext } from '../../domain/enrollment-guard.ts'
import { hasRole, type Role, type User, type UserStore } from '../../domain/users.ts'
import { sendError, wantsJson } from './errors.ts'
import type { Standing, StandingLookup } from './views.ts'
import { signedInRead, type SessionData } from './session.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in user, or null. Loaded fresh from the database on every request. */
    user: User | null
    /** Why a session was just ended, to explain it on the sign-in page. */
    sessionEnded: 'idle' | 'absolute' | 'pass' | null
    /** Where the signed-in user stands (the countdown banner, the soft block): read once per request. */
    standing: Standing | undefined
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes a session opened with a temporary access pass may reach (enrollment and sign-out). */
    passSession?: true
    /** Routes open while a password sign-in still owes its second factor (the step-up routes, sign-out). */
    secondFactor?: true
  }
}

declare module './session.ts' {
  interface SessionData {
    auth?: SessionAuth
  }
}

// lastSeenAt is written at most this often, so idle tracking does not turn every request into a write.
const TOUCH_INTERVAL_MS = 60_000

export default fp<{ config: Config, users: UserStore, clock: Clock, standing: StandingLookup }>(async (app, { config, users, clock, standing }) => {
  app.decorateRequest('user', null)
  app.decorateRequest('sessionEnded', null)
  app.decorateRequest('standing', undefined)

  // preValidation, not preHandler: who is asking (and what their session may reach) is settled before the body
  // is validated, so a guarded route refuses an outsider with 403 or a sign-in redirect, never a 400 about fields.

  // One hook, in this order: who is asking, then what their session may reach.
  app.addHook('preValidation', async (request, reply) => {
    await authenticate(request)
    if (request.user === null || isPublicAsset(request)) return
    const auth = request.session.auth
    const route = request.routeOptions.config
    if (auth?.secondFactorPending === true && route.secondFactor !== true) {
      // A password sign-in that still owes its second factor reaches only the step that collects it.
      if (wantsJson(request)) {
        sendError(request, reply, 401, 'second_factor_required', { key: 'pages.second_factor_required' })
        return
      }
      await reply.redirect(`/step-up?next=${encodeURIComponent(request.method === 'GET' ? request.url : '/')}`, 303)
      return
    }
    if (route.passSession === true || request.is404) return
    if (auth?.passSession === true) {
      // A pass session is for enrolling only: everything else is closed to it, whatever the user's role.
      const used = auth.passKind === 'invitation' ? 'invitation' : 'pass'
      sendError(request, reply, 403, 'pass_session_restricted', { key: 'pages.pass_session_restricted', values: { used } })
      return
    }
    // The campaign's soft-block stage: without a qualifying method, only enrollment (the routes a pass session may
    // reach) stays open, so everyone sets one up before the hard flip. Nothing changes at the provider.
    if (request.standing?.softBlocked !== true) return
    if (wantsJson(request)) {
      sendError(request, reply, 403, 'enrollment_required', { key: 'pages.enrollment_required' })
      return
    }
    await reply.flashRedirect('/', request.i18n.t('pages.enrollment_required_page'), 'info')
  })

  /** Sets request.user (and where they stand) from the session, or ends a session that timed out or lost its user. */
  async function authenticate (request: FastifyRequest): Promise<void> {
    const auth = request.session?.auth
    if (auth === undefined) return
    const now = clock.now().getTime()
    const ended = now - auth.createdAt >= config.session.absoluteMs
      ? 'absolute'
      : auth.passUntil !== undefined && now >= auth.passUntil
        ? 'pass'
        : now - auth.lastSeenAt >= config.session.idleMs ? 'idle' : null
    // The user and their state come with the session row (one statement); the session's own word decides whose
    // they are, so a row that names someone else (or no one) is not believed, and the user is looked up instead.
    const read = signedInRead(request)
    const withSession = read !== null && read.userId === auth.userId ? read : null
    const user = ended !== null ? undefined : withSession !== null ? withSession.user : await users.findById(auth.userId)
    if (ended !== null || user === undefined || user.disabled) {
      request.sessionEnded = ended
      // A fresh empty session (not none), so the page that follows can still carry a CSRF token.
      await request.session.regenerate()
      return
    }
    request.user = user
    request.standing = withSession !== null ? standingFrom(withSession.state, new Date(now)) : await standing(user.id)
    if (now - auth.lastSeenAt >= TOUCH_INTERVAL_MS) request.session.auth = { ...auth, lastSeenAt: now }
  }
}, { name: 'auth', dependencies: ['session', 'views'] })

// Stylesheets, scripts and health checks carry no user data: restricted sessions still need them.
function isPublicAsset (request: FastifyRequest): boolean {
  return request.method === 'GET' && (request.url.startsWith('/static/') || request.url === '/healthz' || request.url === '/readyz')
}

/** preHandler guard: anyone signed in. Pages send anonymous visitors to sign in; APIs answer 401. */
export async function requireUser (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.user !== null) return
  if (wantsJson(request)) {
    sendError(request, reply, 401, 'unauthenticated', { key: 'pages.unauthenticated' })
    return
  }
  const query = new URLSearchParams()
  if (request.method === 'GET') query.set('next', request.url)
  if (request.sessionEnded !== null) query.set('ended', request.sessionEnded)
  const qs = query.toString()
  await reply.redirect(`/login${qs === '' ? '' : `?${qs}`}`, 303)
}

/** preHandler guard factory: at least `role` (admin ⊇ helpdesk ⊇ user). */
export function requireRole (role: Role) {
  return async function (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await requireUser(request, reply)
    if (reply.sent || request.user === null) return
    if (!hasRole(request.user.role, role)) {
      sendError(request, reply, 403, 'forbidden', { key: role === 'admin' ? 'pages.forbidden_admin' : 'pages.forbidden_helpdesk' })
    }
  }
}

/** What the enrollment guard needs to know about this request. */
export function changeContext (request: FastifyRequest, now: Date): ChangeContext {
  const auth = request.session.auth
  return { clientIp: request.ip, passSession: auth?.passSession === true, stepUpAt: auth?.stepUpAt ?? null, reenrollUntil: request.user?.reenrollUntil?.getTime() ?? null, now: now.getTime() }
}

/**
 * Records that this session just proved a second factor, under a new session id: an id seen before the proof
 * (over a shoulder, in a log, on a shared machine) must not inherit it. The old id is deleted from the store;
 * everything the session held (a held console action, a flash message) comes along.
 */
export async function markSteppedUp (request: FastifyRequest, now: Date): Promise<void> {
  const auth = request.session.auth
  if (auth === undefined) return
  await request.session.regenerate(Object.keys(request.session) as Array<keyof SessionData>)
  request.session.auth = { ...auth, stepUpAt: now.getTime(), secondFactorPending: undefined }
}
