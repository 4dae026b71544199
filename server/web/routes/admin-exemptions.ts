import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { exemptionProblems, type CampaignService, type ExemptionKind, type ExemptionRecord } from '../../domain/campaigns.ts'
import type { Clock } from '../../domain/clock.ts'
import { DomainError } from '../../domain/errors.ts'
import { normaliseEmail, type UserStore } from '../../domain/users.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import { actorOf, flashOutcome } from './admin-campaigns.ts'
import { day, parseDay } from './form-fields.ts'

const KIND_LABELS: Record<ExemptionKind, string> = {
  break_glass: 'Break-glass (emergency access) account',
  service_account: 'Service account (a program, not a person)',
  other: 'Other'
}
const KINDS = Object.keys(KIND_LABELS) as ExemptionKind[]

// Text fields only, each optional: what is missing or wrong is shown at its field. The limits only stop abuse.
const ExemptionBody = Type.Object({
  email: Type.Optional(Type.String({ maxLength: 320 })),
  kind: Type.Optional(Type.String({ maxLength: 40 })),
  reason: Type.Optional(Type.String({ maxLength: 500 })),
  owner: Type.Optional(Type.String({ maxLength: 200 })),
  expiresAt: Type.Optional(Type.String({ maxLength: 40 })),
  _csrf: Type.Optional(Type.String())
})
type ExemptionForm = Static<typeof ExemptionBody>
const ExemptionParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const CsrfOnly = Type.Object({ _csrf: Type.Optional(Type.String()) })

/** The form's fields in page order, so the error summary reads like the form. */
const FIELD_ORDER = ['email', 'kind', 'reason', 'owner', 'expiresAt'] as const
/** Where the domain's single-problem errors belong on the form. */
const FIELD_BY_CODE: Record<string, string> = { user_not_found: 'email', reason_required: 'reason', owner_required: 'owner', expiry_required: 'expiresAt' }

const LIST_LIMIT = 200

interface Deps {
  campaigns: Pick<CampaignService, 'exempt' | 'exemptions' | 'revokeExemption'>
  users: Pick<UserStore, 'findByEmail'>
  clock: Clock
}

type FormValues = Record<typeof FIELD_ORDER[number], string>

/** Registered under /admin/exemptions: who is exempt from MFA, why, until when; add and revoke. Admins only. */
const adminExemptionRoutes: FastifyPluginAsync<Deps> = async (app, { campaigns, users, clock }) => {
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  function render (reply: FastifyReply, values: FormValues, fields: Record<string, string> = {}): FastifyReply {
    const problems = FIELD_ORDER.filter((field) => fields[field] !== undefined).map((field) => ({ field, message: fields[field] }))
    return reply.page('admin/exemptions', {
      title: 'Exemptions',
      active: campaigns.exemptions('active', LIST_LIMIT).map(describe),
      ended: campaigns.exemptions('ended', LIST_LIMIT).map(describe),
      limit: LIST_LIMIT,
      kinds: KINDS.map((kind) => [kind, KIND_LABELS[kind]]),
      values,
      fields,
      problems,
      error: problems.length > 0 ? 'Please correct the fields marked below.' : null
    })
  }

  app.get('/', async (_request, reply) => render(reply, { email: '', kind: '', reason: '', owner: '', expiresAt: '' }))

  app.post<{ Body: ExemptionForm }>('/', { schema: { body: ExemptionBody }, config: { stepUp: 'Add the exemption' } }, async (request, reply) => {
    const values: FormValues = {
      email: request.body.email ?? '',
      kind: request.body.kind ?? '',
      reason: request.body.reason ?? '',
      owner: request.body.owner ?? '',
      expiresAt: request.body.expiresAt ?? ''
    }
    const fields: Record<string, string> = {}
    const user = values.email.trim() === '' ? undefined : users.findByEmail(normaliseEmail(values.email))
    if (values.email.trim() === '') fields.email = 'Enter the email address of the account to exempt.'
    else if (user === undefined) fields.email = 'No user has this email address.'
    const exemption = {
      // Unknown kinds pass through as typed; the domain's rules name the field.
      kind: values.kind as ExemptionKind,
      reason: values.reason,
      owner: values.owner,
      expiresAt: parseDay(values.expiresAt)
    }
    Object.assign(fields, exemptionProblems(exemption, clock.now()))
    if (Object.keys(fields).length > 0 || user === undefined) return render(reply.code(400), values, fields)
    try {
      campaigns.exempt(user.id, exemption, actorOf(request))
    } catch (err) {
      const field = err instanceof DomainError ? FIELD_BY_CODE[err.code] : undefined
      if (field === undefined) throw err
      return render(reply.code(400), values, { [field]: (err as DomainError).message })
    }
    return reply.flashRedirect('/admin/exemptions', `${user.email} is exempt from now on. Anything the portal enforced for them is lifted at the next sweep.`)
  })

  app.post<{ Params: Static<typeof ExemptionParams>, Body: Static<typeof CsrfOnly> }>('/:id/revoke', { schema: { params: ExemptionParams, body: CsrfOnly }, config: { stepUp: 'Revoke the exemption' } }, async (request, reply) => {
    return flashOutcome(reply, '/admin/exemptions', () => { campaigns.revokeExemption(request.params.id, actorOf(request)) },
      'Revoked. Their campaign deadline applies again; if it has passed, the next sweep makes MFA mandatory for them.')
  })
}

function describe (exemption: ExemptionRecord) {
  return {
    ...exemption,
    kindLabel: KIND_LABELS[exemption.kind],
    expiresDay: exemption.expiresAt === null ? null : day(exemption.expiresAt),
    revokedDay: exemption.revokedAt === null ? null : day(exemption.revokedAt),
    createdDay: day(exemption.createdAt)
  }
}

export default adminExemptionRoutes
