import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { CampaignValidationError, type CampaignService } from '../../domain/campaigns.ts'
import type { Clock } from '../../domain/clock.ts'
import type { Campaign, EnforcementEngine, PlanItem } from '../../domain/engine.ts'
import { keyIdsOf, type AccessKeyListing } from '../../domain/access-keys.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Translator, Words } from '../../domain/i18n.ts'
import type { Actor } from '../../domain/users.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import {
  blankForm, CampaignBody, campaignFormValues, CHOICE_ANCHORS, CHOICES, DRIFT_LABELS, FIELD_ORDER, formValues, METHODS_REQUIRED_LABELS, parseForm, PRIVILEGED_LABELS, SMS_LABELS, POLICY_VARIANT_KEYS,
  withDomainProblems, type CampaignForm, type FormValues
} from './admin-campaign-form.ts'
import { requestContext } from './auth.ts'
import { registerRolloutRoutes, rolloutView, type RolloutDeps } from './admin-campaign-rollout.ts'
import { sayWords } from '../../domain/stored-words.ts'
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

function newForm (i18n: Translator): FormMode {
  return {
    title: i18n.t('campaigns.new'),
    heading: i18n.t('campaigns.new'),
    lead: i18n.t('campaigns.new_lead'),
    action: '/admin/campaigns',
    submitLabel: i18n.t('campaigns.create'),
    cancelHref: '/admin/campaigns'
  }
}

function editForm (campaign: Campaign, i18n: Translator): FormMode {
  const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}`
  return {
    title: i18n.t('campaigns.edit_title', { name: campaign.name }),
    heading: i18n.t('campaigns.edit_heading', { name: campaign.name }),
    lead: i18n.t(campaign.armedAt === null ? 'campaigns.edit_lead_disarmed' : 'campaigns.edit_lead_armed'),
    action: `${url}/edit`,
    submitLabel: i18n.t('campaigns.save'),
    cancelHref: url
  }
}

interface Deps extends Omit<RolloutDeps, 'campaigns'> {
  campaigns: Pick<CampaignService, 'create' | 'update' | 'list' | 'find' | 'armChecked' | 'disarm' | 'dueAccessKeys' | 'confirmAwsPolicy'>
  engine: Pick<EnforcementEngine, 'campaignPlan'>
  clock: Clock
}

/** Registered under /admin/campaigns: define and edit campaigns, review the dry run, arm and disarm. Admins only. */
const adminCampaignRoutes: FastifyPluginAsync<Deps> = async (app, { campaigns, engine, clock, rollout, dashboard }) => {
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  function renderForm (reply: FastifyReply, mode: FormMode, values: FormValues, problemWords: Record<string, Words> = {}): FastifyReply {
    const i18n = reply.request.i18n
    // Each field's problem in the reader's language (campaign-form.json).
    const fields = Object.fromEntries(Object.entries(problemWords).map(([field, words]) => [field, i18n.t(words.key, words.values)]))
    const problems = FIELD_ORDER.filter((field) => fields[field] !== undefined).map((field) => ({ field, message: fields[field] }))
    return reply.page('admin/campaigns/new', {
      ...mode,
      values,
      fields,
      problems,
      choices: CHOICES,
      choiceAnchors: CHOICE_ANCHORS,
      // Makes the layout's title start with "Error:", so screen readers hear at once that the form came back.
      error: problems.length > 0 ? i18n.t('campaigns.form_errors') : null
    })
  }

  app.get('/', async (request, reply) => {
    return reply.page('admin/campaigns/index', { title: request.i18n.t('campaigns.title'), campaigns: (await campaigns.list()).map((c) => describeCampaign(c, request.i18n)) })
  })

  app.get('/new', async (request, reply) => renderForm(reply, newForm(request.i18n), blankForm(clock.now())))

  app.post<{ Body: CampaignForm }>('/', { schema: { body: CampaignBody }, config: { stepUp: 'stepup.action.create_campaign' } }, async (request, reply) => {
    const values = formValues(request.body)
    const { input, problems } = parseForm(values)
    if (Object.keys(problems).length > 0) return renderForm(reply.code(400), newForm(request.i18n), values, withDomainProblems(input, problems))
    try {
      const campaign = await campaigns.create(input, actorOf(request))
      return reply.flashRedirect(`/admin/campaigns/${encodeURIComponent(campaign.id)}`, request.i18n.t('campaigns.created'))
    } catch (err) {
      if (err instanceof CampaignValidationError) return renderForm(reply.code(400), newForm(request.i18n), values, err.problems)
      throw err
    }
  })

  app.get<{ Params: Static<typeof CampaignParams> }>('/:id', { schema: { params: CampaignParams } }, async (request, reply) => {
    const campaign = await campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    // Before arming, what arming would do; once armed, this campaign's part of the next sweep. The same engine
    // method as `mfa-rollout sweep --dry-run --campaign ID`, so the page and the command list the same users.
    const summary = await engine.campaignPlan(campaign, PLAN_ROWS_SHOWN)
    // The AWS users among them with active access keys: what AWS's documented policy would stop working.
    const accessKeys = await campaigns.dueAccessKeys(campaign)
    return reply.page('admin/campaigns/show', {
      title: campaign.name,
      campaign: describeCampaign(campaign, request.i18n),
      total: summary.total,
      shown: summary.sample.map((item) => describePlanItem(item, request.i18n)),
      enforceCount: summary.enforce,
      relaxCount: summary.relax,
      accessKeys: accessKeys === null ? null : describeAccessKeys(accessKeys, campaign, request.i18n),
      variantChoices: Object.entries(POLICY_VARIANT_KEYS),
      // The breaker (why it paused, today's figures) and the waves (each one's state and burn-down).
      rollout: await rolloutView(campaign, { rollout, dashboard }, clock.now())
    })
  })

  registerRolloutRoutes(app, { campaigns, rollout, dashboard })

  app.post<{ Params: Static<typeof CampaignParams>, Body: Static<typeof AwsPolicyBody> }>('/:id/aws-policy', { schema: { params: CampaignParams, body: AwsPolicyBody }, config: { stepUp: 'stepup.action.confirm_aws_policy' } }, async (request, reply) => {
    const campaign = await campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}#aws-access-keys`
    const seen = (request.body.seenKeys ?? '').split(',').map((id) => id.trim()).filter((id) => id !== '')
    try {
      const updated = await campaigns.confirmAwsPolicy(campaign.id, (request.body.awsPolicyVariant ?? '') as Campaign['awsPolicyVariant'], seen, actorOf(request))
      return reply.flashRedirect(url, request.i18n.t('campaigns.policy_confirmed', { variant: VARIANT_NAMES[updated.awsPolicyVariant] }))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect(url, request.i18n.error(err), 'error')
    }
  })

  app.get<{ Params: Static<typeof CampaignParams> }>('/:id/edit', { schema: { params: CampaignParams } }, async (request, reply) => {
    const campaign = await campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    return renderForm(reply, editForm(campaign, request.i18n), campaignFormValues(campaign))
  })

  app.post<{ Params: Static<typeof CampaignParams>, Body: CampaignForm }>('/:id/edit', { schema: { params: CampaignParams, body: CampaignBody }, config: { stepUp: 'stepup.action.save_campaign' } }, async (request, reply) => {
    const campaign = await campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    const mode = editForm(campaign, request.i18n)
    const values = formValues(request.body)
    const { input, problems } = parseForm(values)
    if (Object.keys(problems).length > 0) return renderForm(reply.code(400), mode, values, withDomainProblems(input, problems))
    let updated: { campaign: Campaign, changed: string[] }
    try {
      updated = await campaigns.update(campaign.id, input, actorOf(request))
    } catch (err) {
      if (err instanceof CampaignValidationError) return renderForm(reply.code(400), mode, values, err.problems)
      throw err
    }
    const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}`
    if (updated.changed.length === 0) return reply.flashRedirect(url, request.i18n.t('campaigns.unchanged'), 'info')
    return reply.flashRedirect(url, request.i18n.t(updated.campaign.armedAt === null ? 'campaigns.saved_disarmed' : 'campaigns.saved_armed'))
  })

  app.post<{ Params: Static<typeof CampaignParams>, Body: Static<typeof CsrfOnly> }>('/:id/arm', { schema: { params: CampaignParams, body: CsrfOnly }, config: { stepUp: 'stepup.action.arm_campaign' } }, async (request, reply) => {
    const campaign = await campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}`
    try {
      // Refused while due AWS users hold access keys an admin has not confirmed the policy for.
      await campaigns.armChecked(campaign.id, actorOf(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect(err.code === 'access_keys_unconfirmed' ? `${url}#aws-access-keys` : url, request.i18n.error(err), 'error')
    }
    return reply.flashRedirect(url, request.i18n.t('campaigns.armed_flash'))
  })

  app.post<{ Params: Static<typeof CampaignParams>, Body: Static<typeof CsrfOnly> }>('/:id/disarm', { schema: { params: CampaignParams, body: CsrfOnly }, config: { stepUp: 'stepup.action.disarm_campaign' } }, async (request, reply) => {
    const campaign = await campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    return flashOutcome(reply, `/admin/campaigns/${encodeURIComponent(campaign.id)}`, async () => { await campaigns.disarm(campaign.id, actorOf(request)) },
      reply.request.i18n.t('campaigns.disarmed_flash'))
  })
}

/** Runs an admin action, then goes back to `url`: with the refusal as an error notice (a DomainError), or with `done`. */
export async function flashOutcome (reply: FastifyReply, url: string, action: () => Promise<void>, done: string): Promise<FastifyReply> {
  try {
    await action()
  } catch (err) {
    if (!(err instanceof DomainError)) throw err
    return reply.flashRedirect(url, reply.request.i18n.error(err), 'error')
  }
  return reply.flashRedirect(url, done)
}

/** The signed-in admin as the domain records them in the audit log. */
export function actorOf (request: FastifyRequest): Actor {
  const user = request.user!
  return { id: user.id, label: user.email, ...requestContext(request) }
}

function describeCampaign (campaign: Campaign, i18n: Translator) {
  return {
    ...campaign,
    target: i18n.t('campaigns.target_shown', { kind: campaign.targetKind, value: campaign.targetValue ?? '', named: campaign.targetValue === null ? 'no' : 'yes' }),
    startsDay: day(campaign.startsAt),
    deadlineDay: day(campaign.deadline),
    privilegedDay: campaign.privilegedDeadline === null ? null : day(campaign.privilegedDeadline),
    armedDay: campaign.armedAt === null ? null : day(campaign.armedAt),
    smsLabel: i18n.t(SMS_LABELS[campaign.smsPolicy]),
    smsSunsetLabel: campaign.smsSunsetAt === null ? null : i18n.t('campaign-form.sms_sunset_shown', { at: i18n.dateTime(campaign.smsSunsetAt), after: campaign.smsAfterSunset, days: campaign.smsSunsetGraceDays }),
    methodsRequiredLabel: i18n.t(METHODS_REQUIRED_LABELS[campaign.methodsRequired]),
    privilegedLabel: i18n.t(PRIVILEGED_LABELS[campaign.privilegedMethods]),
    driftLabel: i18n.t(DRIFT_LABELS[campaign.driftPolicy]),
    awsPolicyLabel: i18n.t(POLICY_VARIANT_KEYS[campaign.awsPolicyVariant])
  }
}

/** Short names of the two policies, for notices. */
const VARIANT_NAMES: Record<Campaign['awsPolicyVariant'], string> = { console_and_api: 'console and API', console_only: 'console only' }

/** The access-key card: who holds which keys, and whether the current choice was confirmed with these keys in view. */
function describeAccessKeys (listing: AccessKeyListing, campaign: Campaign, i18n: Translator) {
  const keyIds = keyIdsOf(listing)
  const review = campaign.accessKeyReview
  const confirmed = review !== null && review.variant === campaign.awsPolicyVariant && keyIds.every((id) => review.keyIds.includes(id))
  return {
    users: listing.users.map((user) => ({
      ...user,
      keys: user.keys.map((key) => ({
        ...key,
        createdDay: key.createdAt === null ? i18n.t('campaigns.key_created_unknown') : i18n.date(key.createdAt),
        lastUsed: key.lastUsedAt === null
          ? i18n.t('campaigns.key_never_used')
          : i18n.t('campaigns.key_last_used', { day: i18n.date(key.lastUsedAt), service: key.lastUsedService ?? '', region: key.lastUsedRegion ?? '', where: key.lastUsedService === null ? 'none' : key.lastUsedRegion === null ? 'service' : 'both' })
      }))
    })),
    keyCount: keyIds.length,
    seenKeys: keyIds.join(','),
    checked: listing.checked,
    unchecked: listing.unchecked,
    error: listing.firstError,
    confirmed,
    reviewDay: review === null ? null : i18n.date(review.at),
    reviewVariant: review === null ? null : VARIANT_NAMES[review.variant]
  }
}

function describePlanItem (item: PlanItem, i18n: Translator) {
  return { ...item, actionLabel: i18n.t('campaigns.plan_action', { action: item.action }), reason: sayWords(i18n, item.words) }
}

export default adminCampaignRoutes
