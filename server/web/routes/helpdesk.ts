import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Config } from '../../config.ts'
import type { PendingApproval, StaffActor } from '../../domain/approvals.ts'
import type { Clock } from '../../domain/clock.ts'
import { DomainError } from '../../domain/errors.ts'
import type { HelpdeskService, IssuedPass } from '../../domain/helpdesk.ts'
import type { Translator } from '../../domain/i18n.ts'
import { minute } from '../../domain/reasons.ts'
import { parseWhole } from './form-fields.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor, sendError, statusFor, wantsJson } from '../plugins/errors.ts'
import { requestContext } from './auth.ts'
import { kindLabel } from './home.ts'
import { describeEvent } from '../../domain/event-descriptions.ts'

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

/** Each state's name on the person's page (locales/<language>/helpdesk.json). */
const STATE_KEYS: Record<string, string> = {
  exempt: 'helpdesk.state_exempt', not_targeted: 'helpdesk.state_not_targeted', pending: 'helpdesk.state_pending', enrolled: 'helpdesk.state_enrolled',
  overdue: 'helpdesk.state_overdue', enforced: 'helpdesk.state_enforced', attention: 'helpdesk.state_attention'
}

interface Deps { helpdesk: HelpdeskService, clock: Clock, config: Config }

/** Registered under /helpdesk: find a person, see where they stand and why, and unblock them. */
const helpdeskRoutes: FastifyPluginAsync<Deps> = async (app, { helpdesk, clock, config }) => {
  app.addHook('preValidation', requireRole('helpdesk'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get<{ Querystring: Static<typeof SearchQuery> }>('/', { schema: { querystring: SearchQuery } }, async (request, reply) => {
    const q = request.query.q ?? ''
    const result = await helpdesk.search(q, request.query.after ?? null)
    return reply.page('helpdesk/index', {
      title: q === '' ? request.i18n.t('helpdesk.title') : request.i18n.t('helpdesk.title_search', { q }),
      q,
      searched: q.trim().length >= 2,
      tooShort: q.trim().length === 1,
      users: result.users,
      nextUrl: result.next === null ? null : `/helpdesk?${new URLSearchParams({ q, after: result.next }).toString()}`
    })
  })

  async function renderProfile (request: FastifyRequest<{ Params: Static<typeof UserParams> }>, reply: FastifyReply, extra: Record<string, unknown> = {}): Promise<FastifyReply> {
    const profile = await helpdesk.profile(request.params.id, request.user!)
    if (profile === undefined) return notFoundFor(request, reply)
    return reply.page('helpdesk/user', {
      title: profile.user.displayName,
      profile,
      // The timeline's events in words (domain/event-descriptions.ts), the name kept beside them.
      timeline: profile.timeline.map((event) => ({ ...event, description: describeEvent(request.i18n, event.action) })),
      stateLabel: request.i18n.t(STATE_KEYS[profile.standing?.state ?? 'not_targeted'] ?? 'helpdesk.state_not_targeted'),
      methods: profile.methods.map((m) => ({ ...m, kindLabel: kindLabel(request.i18n.t, m.kind) })),
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
      if (wantsJson(request)) return sendError(request, reply, statusFor(err), err.code, err)
      return renderProfile(request, reply.code(statusFor(err)), { error: request.i18n.error(err) })
    }
  }

  /** Back to the person's page, saying that nothing happened yet and who must approve (the two-person rule). */
  function requested (request: FastifyRequest<{ Params: Static<typeof UserParams> }>, reply: FastifyReply, pending: PendingApproval): FastifyReply {
    if (wantsJson(request)) return reply.code(202).send(pendingJson(pending))
    return reply.flashRedirect(`/helpdesk/users/${encodeURIComponent(request.params.id)}`, requestedFlash(pending, request.i18n), 'info')
  }

  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof PassBody> }>('/users/:id/pass', { schema: { params: UserParams, body: PassBody }, config: { stepUp: 'stepup.action.issue_pass' } }, async (request, reply) => {
    return act(request, reply, async (actor) => {
      const issued = await helpdesk.issuePass(request.params.id, { lifetimeMinutes: parseWhole(request.body.lifetimeMinutes), oneTime: request.body.oneTime === 'on', reason: request.body.reason }, actor)
      if ('pendingApproval' in issued) return requested(request, reply, issued)
      return showPass(reply, issued, request.i18n.t('helpdesk.pass_issued_title'))
    })
  })

  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof ExtendBody> }>('/users/:id/extend', { schema: { params: UserParams, body: ExtendBody }, config: { stepUp: 'stepup.action.extend_deadline' } }, async (request, reply) => {
    return act(request, reply, async (actor) => {
      const until = await helpdesk.extend(request.params.id, parseWhole(request.body.days), request.body.reason, actor)
      return reply.flashRedirect(`/helpdesk/users/${encodeURIComponent(request.params.id)}`, request.i18n.t('helpdesk.extended', { deadline: request.i18n.dateTime(until) }))
    })
  })

  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof ResetBody> }>('/users/:id/reset', { schema: { params: UserParams, body: ResetBody }, config: { stepUp: 'stepup.action.reset_methods' } }, async (request, reply) => {
    return act(request, reply, async (actor) => {
      const result = await helpdesk.resetMethods(request.params.id, { reason: request.body.reason, issuePass: request.body.issuePass === 'on' }, actor)
      if ('pendingApproval' in result) return requested(request, reply, result)
      const here = `/helpdesk/users/${encodeURIComponent(request.params.id)}`
      const summary = request.i18n.t('helpdesk.reset_done', { count: result.removed, until: request.i18n.dateTime(result.reenrollUntil) })
      if (result.pass === null) return reply.flashRedirect(here, summary)
      return showPass(reply, result.pass, request.i18n.t('helpdesk.reset_pass_title'), summary)
    })
  })
}

/** The signed-in staff member as the domain records them. */
export function staffActor (request: FastifyRequest): StaffActor {
  const user = request.user!
  return { id: user.id, label: user.email, role: user.role, ...requestContext(request) }
}

const REQUESTED_WORDS = { pass: 'a temporary access pass', reset: 'the reset', invitation: 'the invitation' } as const

/** What a script is told (JSON, in English): nothing happened yet, who decides, until when, and where the pass will be shown. */
export function requestedMessage ({ pendingApproval: pending, approvers }: PendingApproval): string {
  const kind = pending.action.kind
  const who = kind === 'invitation' ? 'The invitation is then e-mailed to the person.'
    : kind === 'reset' && !pending.action.issuePass ? 'The reset then takes effect at once.'
      : 'The administrator who approves it is shown the pass, once, and hands it over.'
  const nobody = approvers === 0 ? ' No other administrator can approve it yet: this needs a second administrator (make a colleague an administrator first).' : ''
  return `Nothing has changed yet: ${pending.subject.displayName} has a privileged account, so ${REQUESTED_WORDS[kind]} needs a second administrator's approval (two-person rule). ` +
    `Your request waits on the Approvals page until ${minute(pending.expiresAt)}. ${who}${nobody}`
}

/** The requester's message on the page, in their language and zone (requestedMessage in words from the catalogue). */
export function requestedFlash ({ pendingApproval: pending, approvers }: PendingApproval, i18n: Translator): string {
  const kind = pending.action.kind
  const then = kind === 'invitation' ? i18n.t('helpdesk.requested_then_invitation')
    : kind === 'reset' && !pending.action.issuePass ? i18n.t('helpdesk.requested_then_reset')
      : i18n.t('helpdesk.requested_then_pass')
  const sentences = [i18n.t('helpdesk.requested', { name: pending.subject.displayName, kind, until: i18n.dateTime(pending.expiresAt) }), then]
  if (approvers === 0) sentences.push(i18n.t('helpdesk.requested_no_approver'))
  return sentences.join(' ')
}

/** A script's answer when its action became a request: 202, with what it needs to follow the request up. */
export function pendingJson (pending: PendingApproval): Record<string, unknown> {
  const { pendingApproval: request } = pending
  return { status: 'approval_required', request: { id: request.id, kind: request.action.kind, userId: request.userId, expiresAt: request.expiresAt.toISOString() }, message: requestedMessage(pending) }
}

/** The pass page: this response is the only place the pass exists in the clear, so nothing may keep it. */
export function showPass (reply: FastifyReply, issued: IssuedPass, title: string, summary: string | null = null): FastifyReply {
  // The title and summary come translated; the expiry is shown with its time and zone by the template.
  reply.header('cache-control', 'no-store')
  return reply.page('helpdesk/pass-issued', {
    title,
    subject: issued.subject,
    summary,
    pass: issued.pass,
    // A Microsoft pass is case-sensitive and typed as shown, so it is not broken into groups.
    grouped: issued.issuedBy === 'portal' ? issued.pass.match(/.{1,4}/g)!.join(' ') : issued.pass,
    expiresAt: issued.expiresAt,
    oneTime: issued.oneTime,
    issuedBy: issued.issuedBy
  })
}

export default helpdeskRoutes
