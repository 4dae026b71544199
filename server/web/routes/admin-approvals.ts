import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { ApprovalListing, ApprovalOutcome, ApprovalService } from '../../domain/approvals.ts'
import { DomainError } from '../../domain/errors.ts'
import { minute } from '../../domain/reasons.ts'
import type { UserStore } from '../../domain/users.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor, sendError, statusFor, wantsJson } from '../plugins/errors.ts'
import { showPass, staffActor } from './helpdesk.ts'

const RequestParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const CsrfOnly = Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: 200 })) })
type DecisionRequest = FastifyRequest<{ Params: Static<typeof RequestParams>, Body: Static<typeof CsrfOnly> }>

/** Statuses for the approval codes (the rest go through the shared table in plugins/errors.ts). */
const STATUS: Record<string, number> = { approval_not_found: 404, approval_own_request: 403, approval_decided: 409, approval_expired: 410 }
const RECENT = 20
const HERE = '/admin/approvals'

const KIND_LABELS = { pass: 'Temporary access pass', reset: 'Reset sign-in methods', invitation: 'Sign-in invitation' } as const
const STATUS_LABELS = { pending: 'Waiting', approved: 'Approved', refused: 'Refused', withdrawn: 'Withdrawn', expired: 'Lapsed' } as const

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
    const viewer = request.user!
    const admins = users.listByRole('admin').length
    return reply.page('admin/approvals', {
      title: 'Approvals',
      enabled,
      lifetimeHours: Math.round(approvals.requestLifetimeMs / 3_600_000),
      // One administrator alone can never approve: the rule would block every request, so the page says so.
      needsSecondAdmin: enabled && admins < 2,
      pending: approvals.pending().map((r) => ({ ...describe(r), mine: r.requestedBy === viewer.id, aboutMe: r.userId === viewer.id })),
      recent: approvals.recent(RECENT).map(describe)
    })
  })

  app.post<{ Params: Static<typeof RequestParams>, Body: Static<typeof CsrfOnly> }>('/:id/approve', { schema: { params: RequestParams, body: CsrfOnly }, config: { stepUp: 'Approve the request' } }, async (request, reply) => {
    return decide(request, reply, async () => {
      const { outcome } = await approvals.approve(request.params.id, staffActor(request))
      return report(reply, outcome)
    })
  })

  app.post<{ Params: Static<typeof RequestParams>, Body: Static<typeof CsrfOnly> }>('/:id/refuse', { schema: { params: RequestParams, body: CsrfOnly }, config: { stepUp: 'Refuse the request' } }, async (request, reply) => {
    return decide(request, reply, async () => {
      const status = approvals.refuse(request.params.id, staffActor(request))
      return reply.flashRedirect(HERE, status === 'withdrawn' ? 'You withdrew your request. Nothing was done.' : 'Refused. Nothing was done to the account; the refusal is in the audit log.')
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
    if (status === 403 || status === 404 || err.code.startsWith('approval_') || wantsJson(request)) return sendError(request, reply, status, err.code, err.message)
    return reply.flashRedirect(HERE, `${err.message} Nothing was changed; the request is waiting again.`, 'error')
  }
}

/** What the approval did: a pass is shown here once (to the approver, who hands it over); the rest is a message. */
function report (reply: FastifyReply, outcome: ApprovalOutcome): FastifyReply {
  const approved = 'You approved the request.'
  switch (outcome.kind) {
    case 'pass':
      return showPass(reply, outcome.issued, 'Request approved: temporary access pass issued', `${approved} You are the only one shown this pass: read it to the person yourself.`)
    case 'reset': {
      const { result } = outcome
      const summary = `${approved} Removed ${result.removed} method${result.removed === 1 ? '' : 's'}; the person can set up a new one from any network until ${minute(result.reenrollUntil)}. We emailed them.`
      if (result.pass === null) return reply.flashRedirect(HERE, summary)
      return showPass(reply, result.pass, 'Request approved: methods reset and temporary access pass issued', `${summary} You are the only one shown this pass: read it to the person yourself.`)
    }
    case 'invitation':
      return reply.flashRedirect(HERE, `${approved} The invitation was e-mailed to ${outcome.sent.sentTo}; the link works once, until ${minute(outcome.sent.expiresAt)}.`)
  }
}

function describe (request: ApprovalListing) {
  const { action } = request
  const details = action.kind === 'pass' ? `${action.lifetimeMinutes} minutes${action.oneTime ? ', one sign-in' : ''}`
    : action.kind === 'reset' ? (action.issuePass ? `with a pass (${action.lifetimeMinutes} minutes${action.oneTime ? ', one sign-in' : ''})` : 'without a pass')
      : 'e-mailed to the person'
  return {
    ...request,
    kindLabel: KIND_LABELS[action.kind],
    details,
    statusLabel: STATUS_LABELS[request.status],
    requested: minute(request.requestedAt),
    expires: minute(request.expiresAt),
    decided: request.decidedAt === null ? null : minute(request.decidedAt)
  }
}

export default adminApprovalRoutes
