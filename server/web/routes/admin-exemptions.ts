import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { exemptionProblems, type CampaignService, type ExemptionKind, type ExemptionProblem, type ExemptionRecord } from '../../domain/campaigns.ts'
import type { Clock } from '../../domain/clock.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Translator } from '../../domain/i18n.ts'
import { normaliseEmail, type UserStore } from '../../domain/users.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import { actorOf, flashOutcome } from './admin-campaigns.ts'
import { day, parseDay } from './form-fields.ts'

/** Each kind's name (locales/…/exemptions.json). */
const KIND_KEYS: Record<ExemptionKind, string> = {
  break_glass: 'exemptions.kind_break_glass',
  service_account: 'exemptions.kind_service_account',
  other: 'exemptions.kind_other'
}
const KINDS = Object.keys(KIND_KEYS) as ExemptionKind[]

/** What each problem the rules find says at its field. */
const PROBLEM_KEYS: Record<ExemptionProblem, string> = {
  kind_unknown: 'exemptions.problem_kind_unknown',
  reason_required: 'exemptions.problem_reason_required',
  owner_required: 'exemptions.problem_owner_required',
  expiry_invalid: 'exemptions.problem_expiry_invalid',
  expiry_required: 'exemptions.problem_expiry_required'
}

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

  async function render (request: FastifyRequest, reply: FastifyReply, values: FormValues, fields: Record<string, string> = {}): Promise<FastifyReply> {
    const { i18n } = request
    const problems = FIELD_ORDER.filter((field) => fields[field] !== undefined).map((field) => ({ field, message: fields[field] }))
    return reply.page('admin/exemptions', {
      title: i18n.t('exemptions.title'),
      active: (await campaigns.exemptions('active', LIST_LIMIT)).map((e) => describe(i18n, e)),
      ended: (await campaigns.exemptions('ended', LIST_LIMIT)).map((e) => describe(i18n, e)),
      limit: LIST_LIMIT,
      kinds: KINDS.map((kind) => [kind, i18n.t(KIND_KEYS[kind])]),
      values,
      fields,
      problems,
      error: problems.length > 0 ? i18n.t('exemptions.correct_fields') : null
    })
  }

  app.get('/', async (request, reply) => render(request, reply, { email: '', kind: '', reason: '', owner: '', expiresAt: '' }))

  app.post<{ Body: ExemptionForm }>('/', { schema: { body: ExemptionBody }, config: { stepUp: 'stepup.action.add_exemption' } }, async (request, reply) => {
    const values: FormValues = {
      email: request.body.email ?? '',
      kind: request.body.kind ?? '',
      reason: request.body.reason ?? '',
      owner: request.body.owner ?? '',
      expiresAt: request.body.expiresAt ?? ''
    }
    const fields: Record<string, string> = {}
    const user = values.email.trim() === '' ? undefined : await users.findByEmail(normaliseEmail(values.email))
    const { i18n } = request
    if (values.email.trim() === '') fields.email = i18n.t('exemptions.problem_email_required')
    else if (user === undefined) fields.email = i18n.t('exemptions.problem_email_unknown')
    const exemption = {
      // Unknown kinds pass through as typed; the domain's rules name the field.
      kind: values.kind as ExemptionKind,
      reason: values.reason,
      owner: values.owner,
      expiresAt: parseDay(values.expiresAt)
    }
    for (const [field, problem] of Object.entries(exemptionProblems(exemption, clock.now()))) fields[field] = i18n.t(PROBLEM_KEYS[problem])
    if (Object.keys(fields).length > 0 || user === undefined) return render(request, reply.code(400), values, fields)
    try {
      await campaigns.exempt(user.id, exemption, actorOf(request))
    } catch (err) {
      const field = err instanceof DomainError ? FIELD_BY_CODE[err.code] : undefined
      if (field === undefined) throw err
      return render(request, reply.code(400), values, { [field]: i18n.error(err as DomainError) })
    }
    return reply.flashRedirect('/admin/exemptions', i18n.t('exemptions.added', { email: user.email }))
  })

  app.post<{ Params: Static<typeof ExemptionParams>, Body: Static<typeof CsrfOnly> }>('/:id/revoke', { schema: { params: ExemptionParams, body: CsrfOnly }, config: { stepUp: 'stepup.action.revoke_exemption' } }, async (request, reply) => {
    return flashOutcome(reply, '/admin/exemptions', async () => { await campaigns.revokeExemption(request.params.id, actorOf(request)) },
      request.i18n.t('exemptions.revoked'))
  })
}

function describe (i18n: Translator, exemption: ExemptionRecord) {
  return {
    ...exemption,
    kindLabel: i18n.t(KIND_KEYS[exemption.kind]),
    expiresDay: exemption.expiresAt === null ? null : day(exemption.expiresAt),
    revokedDay: exemption.revokedAt === null ? null : day(exemption.revokedAt),
    createdDay: day(exemption.createdAt)
  }
}

export default adminExemptionRoutes
