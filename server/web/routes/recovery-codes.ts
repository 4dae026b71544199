import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { DomainError } from '../../domain/errors.ts'
import { mayHoldRecoveryCodes } from '../../domain/recovery-codes.ts'
import type { Services } from '../../wiring.ts'
import { changeContext, markSteppedUp, requireUser } from '../plugins/auth.ts'
import { safeNext } from '../next-url.ts'

const UseBody = Type.Object({ code: Type.String({ maxLength: 40 }), next: Type.Optional(Type.String({ maxLength: 2048 })), _csrf: Type.Optional(Type.String()) })

/** Fresh codes stay in the session this long (to be read and downloaded), and never again after. */
const HELD_MS = 10 * 60_000
const PAGE = '/recovery-codes'

declare module '@fastify/session' {
  interface FastifySessionObject {
    /** A set just generated, held only until it has been shown and downloaded (never stored in the clear). */
    freshRecoveryCodes?: { codes: string[], at: number, shown: boolean }
  }
}

/**
 * Recovery codes: the page that creates (and shows once) a set, the one-time download of that set, and using a code
 * in place of a second factor at sign-in.
 */
const recoveryCodeRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { recoveryCodes, methods, clock, guard, config } = services
  const page = { preHandler: requireUser, config: { passSession: true as const } }

  function fresh (request: FastifyRequest): { codes: string[], at: number, shown: boolean } | undefined {
    const held = request.session.freshRecoveryCodes
    if (held === undefined) return undefined
    if (clock.now().getTime() - held.at > HELD_MS) {
      delete request.session.freshRecoveryCodes
      return undefined
    }
    return held
  }

  function meta (request: FastifyRequest): { ip: string, userAgent?: string } {
    return { ip: request.ip, userAgent: request.headers['user-agent'] }
  }

  app.get(PAGE, page, async (request, reply) => {
    const user = request.user!
    if (!mayHoldRecoveryCodes(user)) return reply.page('recovery-codes', { title: 'Recovery codes', directory: true, codes: null, remaining: 0, hasMethods: false })
    const held = fresh(request)
    // Shown once: the page that follows generation shows them; any later visit no longer does.
    let codes: string[] | null = null
    if (held !== undefined && !held.shown) {
      codes = held.codes
      request.session.freshRecoveryCodes = { ...held, shown: true }
    } else if (held !== undefined) {
      delete request.session.freshRecoveryCodes
    }
    reply.header('cache-control', 'no-store')
    return reply.page('recovery-codes', { title: 'Recovery codes', directory: false, codes, remaining: recoveryCodes.remaining(user), hasMethods: methods.countFor(user.id) > 0 })
  })

  // Creating codes (the first set, or a new set that voids the old) needs a recent step-up with a method.
  app.post(PAGE, page, async (request, reply) => {
    const user = request.user!
    if (!mayHoldRecoveryCodes(user)) return reply.flashRedirect(PAGE, 'Your account is managed by your organisation\'s directory: use its own account recovery.', 'error')
    if (methods.countFor(user.id) === 0) return reply.flashRedirect('/', 'Set up a sign-in method first; then create your recovery codes.', 'info')
    if (!guard.hasFreshStepUp(changeContext(request, clock.now()))) {
      return reply.flashRedirect(`/step-up?next=${encodeURIComponent(PAGE)}`, 'To create recovery codes, first confirm it\'s you with a method you already have.', 'info')
    }
    const codes = recoveryCodes.generate(user, meta(request))
    request.session.freshRecoveryCodes = { codes, at: clock.now().getTime(), shown: false }
    return reply.redirect(PAGE, 303)
  })

  // The download serves the set only while it is freshly generated and held in the session, and only once.
  app.get(`${PAGE}/download`, page, async (request, reply) => {
    const held = fresh(request)
    reply.header('cache-control', 'no-store')
    if (held === undefined) return reply.flashRedirect(PAGE, 'Recovery codes can be downloaded only right after they are created. Create a new set if you have lost them.', 'error')
    delete request.session.freshRecoveryCodes
    const text = [
      `Recovery codes for ${request.user!.email} (${config.webauthn.rpName})`,
      `Created ${new Date(held.at).toISOString().slice(0, 10)}. Each code works once, in place of your second sign-in method.`,
      '',
      ...held.codes,
      ''
    ].join('\n')
    return reply.header('content-type', 'text/plain; charset=utf-8')
      .header('content-disposition', 'attachment; filename="recovery-codes.txt"')
      .send(text)
  })

  app.post(`${PAGE}/saved`, page, async (request, reply) => {
    delete request.session.freshRecoveryCodes
    return reply.flashRedirect('/', 'Keep your recovery codes somewhere safe.')
  })

  /** Staff accounts holding a passkey must prove it with the passkey: a code would undo that rule. */
  function passkeyOnly (request: FastifyRequest): boolean {
    if (request.session.auth?.passkeyOnly === true) return true
    const user = request.user!
    return config.staffPasskeyRequired && user.role !== 'user' && methods.listFor(user.id).some((m) => m.kind === 'passkey')
  }

  // In place of a second factor at sign-in only (not for step-up before changes: that would let a code make codes).
  app.post<{ Body: Static<typeof UseBody> }>('/step-up/recovery-code', { preHandler: requireUser, config: { secondFactor: true }, schema: { body: UseBody } }, async (request, reply): Promise<FastifyReply> => {
    const next = safeNext(request.body.next)
    const back = `/step-up?next=${encodeURIComponent(next)}`
    if (request.session.auth?.secondFactorPending !== true || passkeyOnly(request)) {
      return reply.flashRedirect(back, 'A recovery code can be used only to finish signing in, with your password.', 'error')
    }
    let left: number
    try {
      left = await recoveryCodes.use(request.user!, request.body.code, meta(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect(back, err.message, 'error')
    }
    await markSteppedUp(request, clock.now())
    return reply.flashRedirect(next, `Signed in with a recovery code. You have ${left} recovery code${left === 1 ? '' : 's'} left.${left <= 3 ? ' Create a new set soon.' : ''}`, 'info')
  })
}

export default recoveryCodeRoutes
