import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Config } from '../../config.ts'
import type { PendingApproval, StaffActor } from '../../domain/approvals.ts'
import type { Clock } from '../../domain/clock.ts'
import { DomainError } from '../../domain/errors.ts'
import type { HelpdeskService, IssuedPass } from '../../domain/helpdesk.ts'
import { minute } from '../../domain/reasons.ts'
import { parseWhole } from './form-fields.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor, sendError, statusFor, wantsJson } from '../plugins/errors.ts'
import { requestContext } from './auth.ts'
import { KIND_LABELS } from './home.ts'

const SearchQuery = Type.Object({ q: Type.Optional(Type.String({ maxLength: 200 })), after: Type.Optional(Type.String({ maxLength: 320 })) })
const UserParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
// Text fields stay text: a bad number is reported next to the form, not as a bare 400.
const PassBody = Type.Object({
  lifetimeMinutes: Type.String({ maxLength: 10 }),
  oneTime: Type.Optional(Type.Literal('on')),
  reason: Type.String({ maxLength: 1000 }),
  _csrf: Type.Optional(Type.String())
})
const ExtendBody = Type.Object({ days: Type.String({ maxLength: 10 }), reason: Type.String({ maxLength: 1000 }), _csrf: Type.Optional(Type.String()) })
const ResetBody = Type.Object({
  reason: Type.String({ maxLength: 1000 }),
  issuePass: Type.Optional(Type.Literal('on')),
  _csrf: Type.Optional(Type.String())
})
type UserRequest<B> = FastifyRequest<{ Params: Static<typeof UserParams>, Body: B }>

const STATE_LABELS: Record<string, string> = {
  exempt: 'Exempt', not_targeted: 'Not in a campaign', pending: 'Grace period running', enrolled: 'Set up',
  overdue: 'Deadline passed, not set up', enforced: 'MFA mandatory', attention: 'Needs attention'
}

interface Deps { helpdesk: HelpdeskService, clock: Clock, config: Config }

/** Registered under /helpdesk: find a person, see where they stand and why, and unblock them. */
const helpdeskRoutes: FastifyPluginAsync<Deps> = async (app, { helpdesk, clock, config }) => {
  app.addHook('preValidation', requireRole('helpdesk'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get<{ Querystring: Static<typeof SearchQuery> }>('/', { schema: { querystring: SearchQuery } }, async (request, reply) => {
    const q = request.query.q ?? ''
    const result = helpdesk.search(q, request.query.after ?? null)
    return reply.page('helpdesk/index', {
      title: q === '' ? 'Helpdesk' : `Helpdesk: ${q}`,
      q,
      searched: q.trim().length >= 2,
      tooShort: q.trim().length === 1,
      users: result.users,
      nextUrl: result.next === null ? null : `/helpdesk?${new URLSearchParams({ q, after: result.next }).toString()}`
    })
  })

  function renderProfile (request: FastifyRequest<{ Params: Static<typeof UserParams> }>, reply: FastifyReply, extra: Record<string, unknown> = {}): FastifyReply {
    const profile = helpdesk.profile(request.params.id, request.user!)
    if (profile === undefined) return notFoundFor(request, reply)
    return reply.page('helpdesk/user', {
      title: profile.user.displayName,
      profile,
      stateLabel: STATE_LABELS[profile.standing?.state ?? 'not_targeted'],
      methods: profile.methods.map((m) => ({ ...m, kindLabel: KIND_LABELS[m.kind] })),
      passBounds: config.accessPass,
      resetWindowDays: Math.round(config.resetWindowMs / 86_400_000),
      // Invitations need mail that leaves the portal (domain/invitations.ts refuses them otherwise).
      invitationsByMail: config.sandbox || config.mail.smtpUrl !== undefined,
      reenrollOpen: profile.user.reenrollUntil !== null && profile.user.reenrollUntil > clock.now(),
      error: null,
      ...extra
    })
  }

  app.get<{ Params: Static<typeof UserParams> }>('/users/:id', { schema: { params: UserParams } }, async (request, reply) => renderProfile(request, reply))

  /**
   * Runs one helpdesk action (the step-up it needs is checked before, see plugins/step-up-actions.ts); a refusal
   * comes back on the user's page with the reason, and changes nothing.
   */
  async function act<B> (request: UserRequest<B>, reply: FastifyReply, work: (actor: StaffActor) => Promise<FastifyReply>): Promise<FastifyReply> {
    try {
      return await work(staffActor(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      if (err.code === 'user_not_found') return notFoundFor(request, reply)
      if (wantsJson(request)) return sendError(request, reply, statusFor(err), err.code, err.message)
      return renderProfile(request, reply.code(statusFor(err)), { error: err.message })
    }
  }

  /** Back to the person's page, saying that nothing happened yet and who must approve (the two-person rule). */
  function requested (request: FastifyRequest<{ Params: Static<typeof UserParams> }>, reply: FastifyReply, pending: PendingApproval): FastifyReply {
    if (wantsJson(request)) return reply.code(202).send(pendingJson(pending))
    return reply.flashRedirect(`/helpdesk/users/${encodeURIComponent(request.params.id)}`, requestedMessage(pending), 'info')
  }

  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof PassBody> }>('/users/:id/pass', { schema: { params: UserParams, body: PassBody }, config: { stepUp: 'Issue a temporary access pass' } }, async (request, reply) => {
    return act(request, reply, async (actor) => {
      const issued = await helpdesk.issuePass(request.params.id, { lifetimeMinutes: parseWhole(request.body.lifetimeMinutes), oneTime: request.body.oneTime === 'on', reason: request.body.reason }, actor)
      if ('pendingApproval' in issued) return requested(request, reply, issued)
      return showPass(reply, issued, 'Temporary access pass issued')
    })
  })

  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof ExtendBody> }>('/users/:id/extend', { schema: { params: UserParams, body: ExtendBody }, config: { stepUp: 'Extend the deadline' } }, async (request, reply) => {
    return act(request, reply, async (actor) => {
      const until = await helpdesk.extend(request.params.id, parseWhole(request.body.days), request.body.reason, actor)
      return reply.flashRedirect(`/helpdesk/users/${encodeURIComponent(request.params.id)}`, `Extended. The new deadline is ${until.toISOString().slice(0, 10)}; we emailed the user.`)
    })
  })

  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof ResetBody> }>('/users/:id/reset', { schema: { params: UserParams, body: ResetBody }, config: { stepUp: 'Reset sign-in methods' } }, async (request, reply) => {
    return act(request, reply, async (actor) => {
      const result = await helpdesk.resetMethods(request.params.id, { reason: request.body.reason, issuePass: request.body.issuePass === 'on' }, actor)
      if ('pendingApproval' in result) return requested(request, reply, result)
      const here = `/helpdesk/users/${encodeURIComponent(request.params.id)}`
      const summary = `Removed ${result.removed} method${result.removed === 1 ? '' : 's'}; the user can set up a new one from any network until ${result.reenrollUntil.toISOString().slice(0, 10)}. We emailed them.`
      if (result.pass === null) return reply.flashRedirect(here, summary)
      return showPass(reply, result.pass, 'Methods reset and temporary access pass issued', summary)
    })
  })
}

/** The signed-in staff member as the domain records them. */
export function staffActor (request: FastifyRequest): StaffActor {
  const user = request.user!
  return { id: user.id, label: user.email, role: user.role, ...requestContext(request) }
}

const REQUESTED_WORDS = { pass: 'a temporary access pass', reset: 'the reset', invitation: 'the invitation' } as const

/** What a requester is told: nothing happened yet, who decides, until when, and where the pass will be shown. */
export function requestedMessage ({ pendingApproval: pending, approvers }: PendingApproval): string {
  const kind = pending.action.kind
  const who = kind === 'invitation' ? 'The invitation is then e-mailed to the person.'
    : kind === 'reset' && !pending.action.issuePass ? 'The reset then takes effect at once.'
      : 'The administrator who approves it is shown the pass, once, and hands it over.'
  const nobody = approvers === 0 ? ' No other administrator can approve it yet: this needs a second administrator (make a colleague an administrator first).' : ''
  return `Nothing has changed yet: ${pending.subject.displayName} has a privileged account, so ${REQUESTED_WORDS[kind]} needs a second administrator's approval (two-person rule). ` +
    `Your request waits on the Approvals page until ${minute(pending.expiresAt)}. ${who}${nobody}`
}

/** A script's answer when its action became a request: 202, with what it needs to follow the request up. */
export function pendingJson (pending: PendingApproval): Record<string, unknown> {
  const { pendingApproval: request } = pending
  return { status: 'approval_required', request: { id: request.id, kind: request.action.kind, userId: request.userId, expiresAt: request.expiresAt.toISOString() }, message: requestedMessage(pending) }
}

/** The pass page: this response is the only place the pass exists in the clear, so nothing may keep it. */
export function showPass (reply: FastifyReply, issued: IssuedPass, title: string, summary: string | null = null): FastifyReply {
  reply.header('cache-control', 'no-store')
  return reply.page('helpdesk/pass-issued', {
    title,
    subject: issued.subject,
    summary,
    pass: issued.pass,
    // A Microsoft pass is case-sensitive and typed as shown, so it is not broken into groups.
    grouped: issued.issuedBy === 'portal' ? issued.pass.match(/.{1,4}/g)!.join(' ') : issued.pass,
    expires: `${issued.expiresAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    oneTime: issued.oneTime,
    issuedBy: issued.issuedBy
  })
}

export default helpdeskRoutes
