import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { CampaignValidationError, DEFAULT_REMINDER_OFFSETS, validateCampaign, type CampaignInput, type CampaignService } from '../../domain/campaigns.ts'
import type { Clock } from '../../domain/clock.ts'
import type { Campaign, EnforcementEngine, PlanItem } from '../../domain/engine.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Actor } from '../../domain/users.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import { requestContext } from './auth.ts'

const TARGET_KINDS = ['all', 'group', 'privileged', 'provider'] as const

// Every field is optional text: a missing or malformed value is shown next to its field, not as a bare 400 page.
// The limits only stop abuse; the domain says what a valid campaign is.
const CampaignBody = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 200 })),
  targetKind: Type.Optional(Type.Union(TARGET_KINDS.map((kind) => Type.Literal(kind)))),
  targetValue: Type.Optional(Type.String({ maxLength: 200 })),
  startsAt: Type.Optional(Type.String({ maxLength: 40 })),
  deadline: Type.Optional(Type.String({ maxLength: 40 })),
  privilegedDeadline: Type.Optional(Type.String({ maxLength: 40 })),
  newUserWindowDays: Type.Optional(Type.String({ maxLength: 20 })),
  reminderOffsets: Type.Optional(Type.String({ maxLength: 200 })),
  maxExtensionDays: Type.Optional(Type.String({ maxLength: 20 })),
  softBlockDays: Type.Optional(Type.String({ maxLength: 20 })),
  smsPolicy: Type.Optional(Type.String({ maxLength: 40 })),
  privilegedMethods: Type.Optional(Type.String({ maxLength: 40 })),
  driftPolicy: Type.Optional(Type.String({ maxLength: 40 })),
  _csrf: Type.Optional(Type.String())
})
type CampaignForm = Static<typeof CampaignBody>
const CampaignParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const CsrfOnly = Type.Object({ _csrf: Type.Optional(Type.String()) })

// A page stays readable and quick however many users are due; the counts above the table are always complete.
const PLAN_ROWS_SHOWN = 500

/** The form's fields in page order, so the error summary reads top to bottom like the form. */
const FIELD_ORDER = ['name', 'targetKind', 'targetValue', 'startsAt', 'deadline', 'privilegedDeadline', 'newUserWindowDays', 'reminderOffsets', 'maxExtensionDays', 'softBlockDays', 'smsPolicy', 'privilegedMethods', 'driftPolicy']

const SMS_LABELS: Record<Campaign['smsPolicy'], string> = {
  counts: 'Text messages count as a second sign-in method',
  weak: 'Text messages count, but are reported as weak',
  excluded: 'Text messages do not count'
}
const PRIVILEGED_LABELS: Record<Campaign['privilegedMethods'], string> = {
  phishing_resistant: 'Privileged users need a passkey or security key',
  any: 'Privileged users may use any method that counts for everyone'
}
const DRIFT_LABELS: Record<Campaign['driftPolicy'], string> = {
  reapply: 'Put it back at the next sweep (and record it)',
  flag: 'Only flag the user for an admin to decide'
}
const CHOICES = [
  { name: 'smsPolicy', legend: 'Text messages (SMS)', options: Object.entries(SMS_LABELS) },
  { name: 'privilegedMethods', legend: 'Administrators and other privileged users', options: Object.entries(PRIVILEGED_LABELS) },
  { name: 'driftPolicy', legend: 'When someone switches enforcement off by hand at the provider', options: Object.entries(DRIFT_LABELS) }
]
// Where an error summary link for a radio group lands: its first choice.
const CHOICE_ANCHORS = { targetKind: 'all', smsPolicy: 'counts', privilegedMethods: 'phishing_resistant', driftPolicy: 'reapply' }

interface Deps {
  campaigns: Pick<CampaignService, 'create' | 'list' | 'find' | 'arm' | 'disarm'>
  engine: Pick<EnforcementEngine, 'planSummary' | 'previewArming'>
  clock: Clock
}

/** Registered under /admin/campaigns: define campaigns, review the dry run, arm and disarm. Admins only. */
const adminCampaignRoutes: FastifyPluginAsync<Deps> = async (app, { campaigns, engine, clock }) => {
  app.addHook('preHandler', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  function renderForm (reply: FastifyReply, values: FormValues, fields: Record<string, string> = {}): FastifyReply {
    const problems = FIELD_ORDER.filter((field) => fields[field] !== undefined).map((field) => ({ field, message: fields[field] }))
    return reply.page('admin/campaigns/new', {
      title: 'New campaign',
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

  app.get('/new', async (_request, reply) => renderForm(reply, blankForm(clock.now())))

  app.post<{ Body: CampaignForm }>('/', { schema: { body: CampaignBody } }, async (request, reply) => {
    const values = formValues(request.body)
    const { input, problems } = parseForm(values)
    if (Object.keys(problems).length > 0) return renderForm(reply.code(400), values, withDomainProblems(input, problems))
    try {
      const campaign = campaigns.create(input, actorOf(request))
      return reply.flashRedirect(`/admin/campaigns/${encodeURIComponent(campaign.id)}`, 'Created. It is disarmed: review the dry run, then arm it.')
    } catch (err) {
      if (err instanceof CampaignValidationError) return renderForm(reply.code(400), values, err.fields)
      throw err
    }
  })

  app.get<{ Params: Static<typeof CampaignParams> }>('/:id', { schema: { params: CampaignParams } }, async (request, reply) => {
    const campaign = campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    // Before arming, what arming would do; once armed, this campaign's part of the next sweep.
    let summary: { total: number, enforce: number, relax: number, sample: PlanItem[] }
    if (campaign.armedAt === null) {
      const preview = engine.previewArming(campaign.id)
      summary = { total: preview.length, enforce: preview.length, relax: 0, sample: preview.slice(0, PLAN_ROWS_SHOWN) }
    } else {
      summary = engine.planSummary(PLAN_ROWS_SHOWN, campaign.id)
    }
    return reply.page('admin/campaigns/show', {
      title: campaign.name,
      campaign: describeCampaign(campaign),
      total: summary.total,
      shown: summary.sample.map(describePlanItem),
      enforceCount: summary.enforce,
      relaxCount: summary.relax
    })
  })

  for (const action of ['arm', 'disarm'] as const) {
    app.post<{ Params: Static<typeof CampaignParams>, Body: Static<typeof CsrfOnly> }>(`/:id/${action}`, { schema: { params: CampaignParams, body: CsrfOnly } }, async (request, reply) => {
      const campaign = campaigns.find(request.params.id)
      if (campaign === undefined) return notFoundFor(request, reply)
      try {
        campaigns[action](campaign.id, actorOf(request))
      } catch (err) {
        if (!(err instanceof DomainError)) throw err
        return reply.flashRedirect(`/admin/campaigns/${encodeURIComponent(campaign.id)}`, err.message, 'error')
      }
      const text = action === 'arm'
        ? 'Armed. From now on, the sweep makes MFA mandatory for this campaign\'s users whose deadline has passed.'
        : 'Disarmed. The sweep no longer makes MFA mandatory for this campaign\'s users; anyone it already did stays that way.'
      return reply.flashRedirect(`/admin/campaigns/${encodeURIComponent(campaign.id)}`, text)
    })
  }
}

function actorOf (request: FastifyRequest): Actor {
  const user = request.user!
  return { id: user.id, label: user.email, ...requestContext(request) }
}

/** What the admin typed, as typed: a form that comes back shows exactly this. */
interface FormValues {
  name: string
  targetKind: string
  targetValue: string
  startsAt: string
  deadline: string
  privilegedDeadline: string
  newUserWindowDays: string
  reminderOffsets: string
  maxExtensionDays: string
  softBlockDays: string
  smsPolicy: string
  privilegedMethods: string
  driftPolicy: string
}

function blankForm (now: Date): FormValues {
  return {
    name: '',
    targetKind: 'all',
    targetValue: '',
    startsAt: day(now),
    deadline: '',
    privilegedDeadline: '',
    newUserWindowDays: '14',
    reminderOffsets: DEFAULT_REMINDER_OFFSETS.join(', '),
    maxExtensionDays: '30',
    softBlockDays: '',
    smsPolicy: 'counts',
    privilegedMethods: 'phishing_resistant',
    driftPolicy: 'reapply'
  }
}

function formValues (body: CampaignForm): FormValues {
  return {
    name: body.name ?? '',
    targetKind: body.targetKind ?? '',
    targetValue: body.targetValue ?? '',
    startsAt: body.startsAt ?? '',
    deadline: body.deadline ?? '',
    privilegedDeadline: body.privilegedDeadline ?? '',
    newUserWindowDays: body.newUserWindowDays ?? '',
    reminderOffsets: body.reminderOffsets ?? '',
    maxExtensionDays: body.maxExtensionDays ?? '',
    softBlockDays: body.softBlockDays ?? '',
    smsPolicy: body.smsPolicy ?? '',
    privilegedMethods: body.privilegedMethods ?? '',
    driftPolicy: body.driftPolicy ?? ''
  }
}

/**
 * Turns the form's text into a CampaignInput. Only what the text cannot say is reported here (no start date,
 * no target chosen); unreadable dates and numbers become Invalid Date / NaN, which the domain's rules reject
 * with their own message.
 */
function parseForm (values: FormValues): { input: CampaignInput, problems: Record<string, string> } {
  const problems: Record<string, string> = {}
  const targetKind = TARGET_KINDS.find((kind) => kind === values.targetKind)
  if (targetKind === undefined) problems.targetKind = 'Choose who the campaign is for.'
  const startsAt = parseDay(values.startsAt)
  if (startsAt === null || Number.isNaN(startsAt.getTime())) problems.startsAt = 'Enter the start as a date, such as 2027-01-31.'
  const targeted = targetKind === 'group' || targetKind === 'provider'
  const input: CampaignInput = {
    name: values.name,
    targetKind: targetKind ?? 'all',
    targetValue: targeted && values.targetValue.trim() !== '' ? values.targetValue.trim() : null,
    startsAt: startsAt ?? new Date(Number.NaN),
    deadline: parseDay(values.deadline) ?? new Date(Number.NaN),
    privilegedDeadline: parseDay(values.privilegedDeadline),
    newUserWindowDays: parseWhole(values.newUserWindowDays),
    reminderOffsets: values.reminderOffsets.split(/[\s,]+/).filter((part) => part !== '').map(parseWhole),
    maxExtensionDays: parseWhole(values.maxExtensionDays),
    softBlockDays: values.softBlockDays.trim() === '' ? null : parseWhole(values.softBlockDays),
    // Unknown choices pass through as typed; the domain's rules name the field.
    smsPolicy: values.smsPolicy as CampaignInput['smsPolicy'],
    privilegedMethods: values.privilegedMethods as CampaignInput['privilegedMethods'],
    driftPolicy: values.driftPolicy as CampaignInput['driftPolicy']
  }
  return { input, problems }
}

/** The form's own problems plus the domain's, so one round trip shows everything that needs fixing. */
function withDomainProblems (input: CampaignInput, problems: Record<string, string>): Record<string, string> {
  try {
    validateCampaign(input)
  } catch (err) {
    if (!(err instanceof CampaignValidationError)) throw err
    return { ...err.fields, ...problems }
  }
  return problems
}

/** yyyy-mm-dd as UTC midnight; null for an empty field; Invalid Date for anything else (or a day that does not exist). */
function parseDay (text: string): Date | null {
  const value = text.trim()
  if (value === '') return null
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value)
  if (match === null) return new Date(Number.NaN)
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])))
  // Date.UTC rolls 2027-02-30 over into March; such a day was never on the calendar.
  return day(date) === value ? date : new Date(Number.NaN)
}

/** Digits only: "1e3", "0x10" and "14.5" are not a number of days. */
function parseWhole (text: string): number {
  const value = text.trim()
  return /^\d{1,6}$/.test(value) ? Number(value) : Number.NaN
}

function day (date: Date): string {
  return date.toISOString().slice(0, 10)
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
    driftLabel: DRIFT_LABELS[campaign.driftPolicy]
  }
}

const ACTION_LABELS: Record<PlanItem['action'], string> = { enforce: 'Make MFA mandatory', relax: 'Lift enforcement' }

function describePlanItem (item: PlanItem) {
  return { ...item, actionLabel: ACTION_LABELS[item.action] }
}

export default adminCampaignRoutes
