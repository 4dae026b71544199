import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { ApprovalListing, ApprovalOutcome, ApprovalService } from '../../domain/approvals.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Translator } from '../../domain/i18n.ts'
import type { UserStore } from '../../domain/users.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor, sendError, statusFor, wantsJson } from '../plugins/errors.ts'
import { showPass, staffActor } from './helpdesk.ts'
import { MASKED_TOKEN_MAX_LENGTH } from '../masked-token.ts'

const RequestParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const CsrfOnly = Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: MASKED_TOKEN_MAX_LENGTH })) })
type DecisionRequest = FastifyRequest<{ Params: Static<typeof RequestParams>, Body: Static<typeof CsrfOnly> }>

/** Statuses for the approval codes (the rest go through the shared table in plugins/errors.ts). */
const STATUS: Record<string, number> = { approval_not_found: 404, approval_own_request: 403, approval_decided: 409, approval_expired: 410 }
const RECENT = 20
const HERE = '/admin/approvals'

/** What each kind of request is called (locales/…/approvals.json); statuses are worded by the template. */
const KIND_KEYS = { pass: 'approvals.kind_pass', reset: 'approvals.kind_reset', invitation: 'approvals.kind_invitation' } as const

interface Deps {
  approvals: ApprovalService
  users: Pick<UserStore, 'listByRole'>
  /** Whether the two-person rule is on (TWO_PERSON_RULE), for the page's explanation. */
  enabled: boolean
}

/**
 * Registered under /admin/approvals: the two-person rule's requests (passes, resets and invitations for privileged
 * accounts). Another administrator approves, with a fresh step-up of their own (config.stepUp), or refuses; the
 * one who asked can only withdraw. Approving a pass shows it here, once, to the approver.
 */
const adminApprovalRoutes: FastifyPluginAsync<Deps> = async (app, { approvals, users, enabled }) => {
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get('/', async (request, reply) => {
    const { i18n } = request
    const viewer = request.user!
    const admins = (await users.listByRole('admin')).length
    return reply.page('admin/approvals', {
      title: i18n.t('approvals.title'),
      enabled,
      lifetimeHours: Math.round(approvals.requestLifetimeMs / 3_600_000),
      // One administrator alone can never approve: the rule would block every request, so the page says so.
      needsSecondAdmin: enabled && admins < 2,
      pending: (await approvals.pending()).map((r) => ({ ...describe(i18n, r), mine: r.requestedBy === viewer.id, aboutMe: r.userId === viewer.id })),
      recent: (await approvals.recent(RECENT)).map((r) => describe(i18n, r))
    })
  })

  app.post<{ Params: Static<typeof RequestParams>, Body: Static<typeof CsrfOnly> }>('/:id/approve', { schema: { params: RequestParams, body: CsrfOnly }, config: { stepUp: 'stepup.action.approve_request' } }, async (request, reply) => {
    return decide(request, reply, async () => {
      const { outcome } = await approvals.approve(request.params.id, staffActor(request))
      return report(request, reply, outcome)
    })
  })

  app.post<{ Params: Static<typeof RequestParams>, Body: Static<typeof CsrfOnly> }>('/:id/refuse', { schema: { params: RequestParams, body: CsrfOnly }, config: { stepUp: 'stepup.action.refuse_request' } }, async (request, reply) => {
    return decide(request, reply, async () => {
      const status = await approvals.refuse(request.params.id, staffActor(request))
      return reply.flashRedirect(HERE, status === 'withdrawn' ? request.i18n.t('approvals.withdrawn') : request.i18n.t('approvals.refused'))
    })
  })
}

/**
 * A decision that is not allowed is an error page (or JSON) with a stable code. An approved request that could not
 * be carried out (the directory refused the pass, the e-mail could not be sent) changed nothing and waits again.
 */
async function decide (request: DecisionRequest, reply: FastifyReply, work: () => Promise<FastifyReply>): Promise<FastifyReply> {
  try {
    return await work()
  } catch (err) {
    if (!(err instanceof DomainError)) throw err
    const status = STATUS[err.code] ?? statusFor(err)
    if (status === 403 || status === 404 || err.code.startsWith('approval_') || wantsJson(request)) return sendError(request, reply, status, err.code, err)
    return reply.flashRedirect(HERE, request.i18n.t('approvals.not_carried_out', { error: request.i18n.error(err) }), 'error')
  }
}

/** What the approval did: a pass is shown here once (to the approver, who hands it over); the rest is a message. */
function report (request: FastifyRequest, reply: FastifyReply, outcome: ApprovalOutcome): FastifyReply {
  const { i18n } = request
  switch (outcome.kind) {
    case 'pass':
      return showPass(reply, outcome.issued, i18n.t('approvals.pass_title'), i18n.t('approvals.pass_summary'))
    case 'reset': {
      const { result } = outcome
      const values = { count: result.removed, until: i18n.dateTime(result.reenrollUntil) }
      if (result.pass === null) return reply.flashRedirect(HERE, i18n.t('approvals.reset_summary', values))
      return showPass(reply, result.pass, i18n.t('approvals.reset_pass_title'), i18n.t('approvals.reset_pass_summary', values))
    }
    case 'invitation':
      return reply.flashRedirect(HERE, i18n.t('approvals.invitation_summary', { email: outcome.sent.sentTo, until: i18n.dateTime(outcome.sent.expiresAt) }))
  }
}

function describe (i18n: Translator, request: ApprovalListing) {
  const { action } = request
  const details = action.kind === 'pass' ? i18n.t('approvals.details_pass', { minutes: action.lifetimeMinutes, oneTime: action.oneTime ? 'yes' : 'no' })
    : action.kind === 'reset' ? (action.issuePass ? i18n.t('approvals.details_reset_pass', { minutes: action.lifetimeMinutes, oneTime: action.oneTime ? 'yes' : 'no' }) : i18n.t('approvals.details_reset'))
      : i18n.t('approvals.details_invitation')
  return { ...request, kindLabel: i18n.t(KIND_KEYS[action.kind]), details }
}

export default adminApprovalRoutes
