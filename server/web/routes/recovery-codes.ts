import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { DomainError } from '../../domain/errors.ts'
import { mayHoldRecoveryCodes } from '../../domain/recovery-codes.ts'
import type { Services } from '../../wiring.ts'
import { changeContext, markSteppedUp, requireUser } from '../plugins/auth.ts'
import { safeNext } from '../next-url.ts'

const TokenQuery = Type.Object({ token: Type.String({ maxLength: 100 }) })
const TokenBody = Type.Object({ token: Type.String({ maxLength: 100 }), _csrf: Type.Optional(Type.String()) })
const UseBody = Type.Object({ code: Type.String({ maxLength: 40 }), next: Type.Optional(Type.String({ maxLength: 2048 })), _csrf: Type.Optional(Type.String()) })

/** Fresh codes stay in the session this long (to be read and downloaded), and never again after. */
const HELD_MS = 10 * 60_000
const PAGE = '/recovery-codes'

declare module '../plugins/session.ts' {
  interface SessionData {
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
    if (!mayHoldRecoveryCodes(user)) return reply.page('recovery-codes', { title: request.i18n.t('recovery.title'), directory: true, codes: null, remaining: 0, hasMethods: false })
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
    return reply.page('recovery-codes', { title: request.i18n.t('recovery.title'), directory: false, codes, remaining: await recoveryCodes.remaining(user), hasMethods: await methods.countFor(user.id) > 0 })
  })

  // Creating codes (the first set, or a new set that voids the old) needs a recent step-up with a method.
  app.post(PAGE, page, async (request, reply) => {
    const user = request.user!
    if (!mayHoldRecoveryCodes(user)) return reply.flashRedirect(PAGE, request.i18n.t('recovery.flash_directory'), 'error')
    if (await methods.countFor(user.id) === 0) return reply.flashRedirect('/', request.i18n.t('recovery.flash_method_first'), 'info')
    if (!guard.hasFreshStepUp(changeContext(request, clock.now()))) {
      return reply.flashRedirect(`/step-up?next=${encodeURIComponent(PAGE)}`, request.i18n.t('recovery.flash_step_up'), 'info')
    }
    const codes = await recoveryCodes.generate(user, meta(request))
    request.session.freshRecoveryCodes = { codes, at: clock.now().getTime(), shown: false }
    return reply.redirect(PAGE, 303)
  })

  // The download serves the set only while it is freshly generated and held in the session, and only once.
  app.get(`${PAGE}/download`, page, async (request, reply) => {
    const held = fresh(request)
    reply.header('cache-control', 'no-store')
    if (held === undefined) return reply.flashRedirect(PAGE, request.i18n.t('recovery.flash_download_gone'), 'error')
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

  // "This wasn't me" from the recovery-code e-mail. GET only shows what would happen: mail scanners follow links,
  // and a GET must never void anything.
  app.get<{ Querystring: Static<typeof TokenQuery> }>(`${PAGE}/not-me`, { ...page, schema: { querystring: TokenQuery } }, async (request, reply) => {
    const notice = await recoveryCodes.noticeFor(request.user!, request.query.token)
    return reply.page('recovery-codes-not-me', { title: request.i18n.t('recovery.not_me_title'), usedAt: notice.usedCodeAt, token: request.query.token })
  })

  app.post<{ Body: Static<typeof TokenBody> }>(`${PAGE}/not-me`, { ...page, schema: { body: TokenBody } }, async (request, reply) => {
    const auth = request.session.auth!
    await recoveryCodes.reportNotMe(request.user!, request.body.token, meta(request))
    // Every session of the account was just ended; this browser is the one reporting, so it goes on under a new id.
    await request.session.regenerate()
    request.session.auth = auth
    return reply.flashRedirect('/', request.i18n.t('recovery.not_me_done'))
  })

  app.post(`${PAGE}/saved`, page, async (request, reply) => {
    delete request.session.freshRecoveryCodes
    return reply.flashRedirect('/', request.i18n.t('recovery.flash_saved'))
  })

  /** Staff accounts holding a passkey must prove it with the passkey: a code would undo that rule. */
  async function passkeyOnly (request: FastifyRequest): Promise<boolean> {
    if (request.session.auth?.passkeyOnly === true) return true
    const user = request.user!
    return config.staffPasskeyRequired && user.role !== 'user' && (await methods.listFor(user.id)).some((m) => m.kind === 'passkey')
  }

  // In place of a second factor at sign-in only (not for step-up before changes: that would let a code make codes).
  app.post<{ Body: Static<typeof UseBody> }>('/step-up/recovery-code', { preHandler: requireUser, config: { secondFactor: true }, schema: { body: UseBody } }, async (request, reply): Promise<FastifyReply> => {
    const next = safeNext(request.body.next)
    const back = `/step-up?next=${encodeURIComponent(next)}`
    if (request.session.auth?.secondFactorPending !== true || await passkeyOnly(request)) {
      return reply.flashRedirect(back, request.i18n.t('recovery.flash_only_sign_in'), 'error')
    }
    let left: number
    try {
      left = await recoveryCodes.use(request.user!, request.body.code, meta(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect(back, request.i18n.error(err), 'error')
    }
    await markSteppedUp(request, clock.now())
    return reply.flashRedirect(next, request.i18n.t('recovery.flash_signed_in', { left, low: left <= 3 ? 'yes' : 'no' }), 'info')
  })
}

export default recoveryCodeRoutes
