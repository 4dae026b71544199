import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { CampaignValidationError, type CampaignService } from '../../domain/campaigns.ts'
import type { Clock } from '../../domain/clock.ts'
import type { Campaign, EnforcementEngine, PlanItem } from '../../domain/engine.ts'
import { keyIdsOf, POLICY_VARIANT_LABELS, type AccessKeyListing } from '../../domain/access-keys.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Actor } from '../../domain/users.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import {
  blankForm, CampaignBody, campaignFormValues, CHOICE_ANCHORS, CHOICES, DRIFT_LABELS, FIELD_ORDER, formValues, parseForm, PRIVILEGED_LABELS, SMS_LABELS,
  withDomainProblems, type CampaignForm, type FormValues
} from './admin-campaign-form.ts'
import { requestContext } from './auth.ts'
import { day } from './form-fields.ts'

const CampaignParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const CsrfOnly = Type.Object({ _csrf: Type.Optional(Type.String()) })
// The policy choice for AWS users, with the access key ids the page showed (comma-separated).
const AwsPolicyBody = Type.Object({
  awsPolicyVariant: Type.Optional(Type.String({ maxLength: 40 })),
  seenKeys: Type.Optional(Type.String({ maxLength: 200_000 })),
  _csrf: Type.Optional(Type.String())
})

// A page stays readable and quick however many users are due; the counts above the table are always complete.
const PLAN_ROWS_SHOWN = 500

/** The same form creates and edits a campaign; only where it posts and how it is worded differ. */
interface FormMode {
  title: string
  heading: string
  lead: string
  action: string
  submitLabel: string
  cancelHref: string
}

const NEW_FORM: FormMode = {
  title: 'New campaign',
  heading: 'New campaign',
  lead: 'Nothing is enforced when you create a campaign: it starts disarmed, so you can review its dry run first.',
  action: '/admin/campaigns',
  submitLabel: 'Create campaign',
  cancelHref: '/admin/campaigns'
}

function editForm (campaign: Campaign): FormMode {
  const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}`
  return {
    title: `Edit ${campaign.name}`,
    heading: `Edit “${campaign.name}”`,
    lead: campaign.armedAt === null
      ? 'The campaign stays disarmed. Everyone\'s deadline is worked out again when you save.'
      : 'This campaign is armed: everyone\'s deadline is worked out again when you save, and the next sweep follows the new dates. Check the dry run afterwards.',
    action: `${url}/edit`,
    submitLabel: 'Save changes',
    cancelHref: url
  }
}

interface Deps {
  campaigns: Pick<CampaignService, 'create' | 'update' | 'list' | 'find' | 'armChecked' | 'disarm' | 'dueAccessKeys' | 'confirmAwsPolicy'>
  engine: Pick<EnforcementEngine, 'campaignPlan'>
  clock: Clock
}

/** Registered under /admin/campaigns: define and edit campaigns, review the dry run, arm and disarm. Admins only. */
const adminCampaignRoutes: FastifyPluginAsync<Deps> = async (app, { campaigns, engine, clock }) => {
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  function renderForm (reply: FastifyReply, mode: FormMode, values: FormValues, fields: Record<string, string> = {}): FastifyReply {
    const problems = FIELD_ORDER.filter((field) => fields[field] !== undefined).map((field) => ({ field, message: fields[field] }))
    return reply.page('admin/campaigns/new', {
      ...mode,
      values,
      fields,
      problems,
      choices: CHOICES,
      choiceAnchors: CHOICE_ANCHORS,
      // Makes the layout's title start with "Error:", so screen readers hear at once that the form came back.
      error: problems.length > 0 ? 'Please correct the fields marked below.' : null
    })
  }

  app.get('/', async (_request, reply) => {
    return reply.page('admin/campaigns/index', { title: 'Campaigns', campaigns: campaigns.list().map(describeCampaign) })
  })

  app.get('/new', async (_request, reply) => renderForm(reply, NEW_FORM, blankForm(clock.now())))

  app.post<{ Body: CampaignForm }>('/', { schema: { body: CampaignBody }, config: { stepUp: 'Create the campaign' } }, async (request, reply) => {
    const values = formValues(request.body)
    const { input, problems } = parseForm(values)
    if (Object.keys(problems).length > 0) return renderForm(reply.code(400), NEW_FORM, values, withDomainProblems(input, problems))
    try {
      const campaign = campaigns.create(input, actorOf(request))
      return reply.flashRedirect(`/admin/campaigns/${encodeURIComponent(campaign.id)}`, 'Created. It is disarmed: review the dry run, then arm it.')
    } catch (err) {
      if (err instanceof CampaignValidationError) return renderForm(reply.code(400), NEW_FORM, values, err.fields)
      throw err
    }
  })

  app.get<{ Params: Static<typeof CampaignParams> }>('/:id', { schema: { params: CampaignParams } }, async (request, reply) => {
    const campaign = campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    // Before arming, what arming would do; once armed, this campaign's part of the next sweep. The same engine
    // method as `mfa-rollout sweep --dry-run --campaign ID`, so the page and the command list the same users.
    const summary = engine.campaignPlan(campaign, PLAN_ROWS_SHOWN)
    // The AWS users among them with active access keys: what AWS's documented policy would stop working.
    const accessKeys = await campaigns.dueAccessKeys(campaign)
    return reply.page('admin/campaigns/show', {
      title: campaign.name,
      campaign: describeCampaign(campaign),
      total: summary.total,
      shown: summary.sample.map(describePlanItem),
      enforceCount: summary.enforce,
      relaxCount: summary.relax,
      accessKeys: accessKeys === null ? null : describeAccessKeys(accessKeys, campaign),
      variantChoices: Object.entries(POLICY_VARIANT_LABELS)
    })
  })

  app.post<{ Params: Static<typeof CampaignParams>, Body: Static<typeof AwsPolicyBody> }>('/:id/aws-policy', { schema: { params: CampaignParams, body: AwsPolicyBody }, config: { stepUp: 'Confirm the policy for AWS users' } }, async (request, reply) => {
    const campaign = campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}#aws-access-keys`
    const seen = (request.body.seenKeys ?? '').split(',').map((id) => id.trim()).filter((id) => id !== '')
    try {
      const updated = await campaigns.confirmAwsPolicy(campaign.id, (request.body.awsPolicyVariant ?? '') as Campaign['awsPolicyVariant'], seen, actorOf(request))
      return reply.flashRedirect(url, `Confirmed: AWS users of this campaign get the "${VARIANT_NAMES[updated.awsPolicyVariant]}" policy.`)
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect(url, err.message, 'error')
    }
  })

  app.get<{ Params: Static<typeof CampaignParams> }>('/:id/edit', { schema: { params: CampaignParams } }, async (request, reply) => {
    const campaign = campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    return renderForm(reply, editForm(campaign), campaignFormValues(campaign))
  })

  app.post<{ Params: Static<typeof CampaignParams>, Body: CampaignForm }>('/:id/edit', { schema: { params: CampaignParams, body: CampaignBody }, config: { stepUp: 'Save the campaign' } }, async (request, reply) => {
    const campaign = campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    const mode = editForm(campaign)
    const values = formValues(request.body)
    const { input, problems } = parseForm(values)
    if (Object.keys(problems).length > 0) return renderForm(reply.code(400), mode, values, withDomainProblems(input, problems))
    let updated: { campaign: Campaign, changed: string[] }
    try {
      updated = campaigns.update(campaign.id, input, actorOf(request))
    } catch (err) {
      if (err instanceof CampaignValidationError) return renderForm(reply.code(400), mode, values, err.fields)
      throw err
    }
    const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}`
    if (updated.changed.length === 0) return reply.flashRedirect(url, 'Nothing was changed.', 'info')
    return reply.flashRedirect(url, updated.campaign.armedAt === null
      ? 'Saved. Everyone\'s deadline has been worked out again.'
      : 'Saved. This campaign is armed: the dry run below shows what the next sweep will do with the new settings.')
  })

  app.post<{ Params: Static<typeof CampaignParams>, Body: Static<typeof CsrfOnly> }>('/:id/arm', { schema: { params: CampaignParams, body: CsrfOnly }, config: { stepUp: 'Arm the campaign' } }, async (request, reply) => {
    const campaign = campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}`
    try {
      // Refused while due AWS users hold access keys an admin has not confirmed the policy for.
      await campaigns.armChecked(campaign.id, actorOf(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect(err.code === 'access_keys_unconfirmed' ? `${url}#aws-access-keys` : url, err.message, 'error')
    }
    return reply.flashRedirect(url, 'Armed. From now on, the sweep makes MFA mandatory for this campaign\'s users whose deadline has passed.')
  })

  app.post<{ Params: Static<typeof CampaignParams>, Body: Static<typeof CsrfOnly> }>('/:id/disarm', { schema: { params: CampaignParams, body: CsrfOnly }, config: { stepUp: 'Disarm the campaign' } }, async (request, reply) => {
    const campaign = campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    return flashOutcome(reply, `/admin/campaigns/${encodeURIComponent(campaign.id)}`, () => { campaigns.disarm(campaign.id, actorOf(request)) },
      'Disarmed. The sweep no longer makes MFA mandatory for this campaign\'s users; anyone it already did stays that way.')
  })
}

/** Runs an admin action, then goes back to `url`: with the refusal as an error notice (a DomainError), or with `done`. */
export function flashOutcome (reply: FastifyReply, url: string, action: () => void, done: string): FastifyReply {
  try {
    action()
  } catch (err) {
    if (!(err instanceof DomainError)) throw err
    return reply.flashRedirect(url, err.message, 'error')
  }
  return reply.flashRedirect(url, done)
}

/** The signed-in admin as the domain records them in the audit log. */
export function actorOf (request: FastifyRequest): Actor {
  const user = request.user!
  return { id: user.id, label: user.email, ...requestContext(request) }
}

const TARGET_LABELS: Record<Campaign['targetKind'], string> = { all: 'Everyone', group: 'Group', privileged: 'Privileged users only', provider: 'Provider' }

function describeCampaign (campaign: Campaign) {
  return {
    ...campaign,
    target: campaign.targetValue === null ? TARGET_LABELS[campaign.targetKind] : `${TARGET_LABELS[campaign.targetKind]} "${campaign.targetValue}"`,
    startsDay: day(campaign.startsAt),
    deadlineDay: day(campaign.deadline),
    privilegedDay: campaign.privilegedDeadline === null ? null : day(campaign.privilegedDeadline),
    armedDay: campaign.armedAt === null ? null : day(campaign.armedAt),
    smsLabel: SMS_LABELS[campaign.smsPolicy],
    privilegedLabel: PRIVILEGED_LABELS[campaign.privilegedMethods],
    driftLabel: DRIFT_LABELS[campaign.driftPolicy],
    awsPolicyLabel: POLICY_VARIANT_LABELS[campaign.awsPolicyVariant]
  }
}

/** Short names of the two policies, for notices. */
const VARIANT_NAMES: Record<Campaign['awsPolicyVariant'], string> = { console_and_api: 'console and API', console_only: 'console only' }

/** The access-key card: who holds which keys, and whether the current choice was confirmed with these keys in view. */
function describeAccessKeys (listing: AccessKeyListing, campaign: Campaign) {
  const keyIds = keyIdsOf(listing)
  const review = campaign.accessKeyReview
  const confirmed = review !== null && review.variant === campaign.awsPolicyVariant && keyIds.every((id) => review.keyIds.includes(id))
  return {
    users: listing.users.map((user) => ({
      ...user,
      keys: user.keys.map((key) => ({
        ...key,
        createdDay: key.createdAt === null ? 'unknown' : day(key.createdAt),
        lastUsed: key.lastUsedAt === null
          ? 'Never (or not since AWS began recording it)'
          : `${day(key.lastUsedAt)}${key.lastUsedService === null ? '' : `, ${key.lastUsedService}`}${key.lastUsedRegion === null ? '' : ` in ${key.lastUsedRegion}`}`
      }))
    })),
    keyCount: keyIds.length,
    seenKeys: keyIds.join(','),
    checked: listing.checked,
    unchecked: listing.unchecked,
    error: listing.firstError,
    confirmed,
    reviewDay: review === null ? null : day(review.at),
    reviewVariant: review === null ? null : VARIANT_NAMES[review.variant]
  }
}

const ACTION_LABELS: Record<PlanItem['action'], string> = { enforce: 'Make MFA mandatory', relax: 'Lift enforcement' }

function describePlanItem (item: PlanItem) {
  return { ...item, actionLabel: ACTION_LABELS[item.action] }
}

export default adminCampaignRoutes
