/** The campaign form (new and edit): its fields, choices and labels, and how typed text becomes a CampaignInput. */
import { Type, type Static } from '@sinclair/typebox'
import { POLICY_VARIANT_LABELS } from '../../domain/access-keys.ts'
import { CampaignValidationError, DEFAULT_REMINDER_OFFSETS, validateCampaign, type CampaignInput } from '../../domain/campaigns.ts'
import type { Campaign } from '../../domain/engine.ts'
import { day, parseDay, parseWhole } from './form-fields.ts'

export const TARGET_KINDS = ['all', 'group', 'privileged', 'provider'] as const

// Every field is optional text: a missing or malformed value is shown next to its field, not as a bare 400 page.
// The limits only stop abuse; the domain says what a valid campaign is.
export const CampaignBody = Type.Object({
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
  awsPolicyVariant: Type.Optional(Type.String({ maxLength: 40 })),
  _csrf: Type.Optional(Type.String())
})
export type CampaignForm = Static<typeof CampaignBody>

/** The form's fields in page order, so the error summary reads top to bottom like the form. */
export const FIELD_ORDER = ['name', 'targetKind', 'targetValue', 'startsAt', 'deadline', 'privilegedDeadline', 'newUserWindowDays', 'reminderOffsets', 'maxExtensionDays', 'softBlockDays', 'smsPolicy', 'privilegedMethods', 'driftPolicy', 'awsPolicyVariant'] as const

export const SMS_LABELS: Record<Campaign['smsPolicy'], string> = {
  counts: 'Text messages count as a second sign-in method',
  weak: 'Text messages count, but are reported as weak',
  excluded: 'Text messages do not count'
}
export const PRIVILEGED_LABELS: Record<Campaign['privilegedMethods'], string> = {
  phishing_resistant: 'Privileged users need a passkey or security key',
  any: 'Privileged users may use any method that counts for everyone'
}
export const DRIFT_LABELS: Record<Campaign['driftPolicy'], string> = {
  reapply: 'Put it back at the next sweep (and record it)',
  flag: 'Only flag the user for an admin to decide'
}
export const CHOICES: Array<{ name: string, legend: string, hint?: string, options: Array<[string, string]> }> = [
  { name: 'smsPolicy', legend: 'Text messages (SMS)', options: Object.entries(SMS_LABELS) },
  { name: 'privilegedMethods', legend: 'Administrators and other privileged users', options: Object.entries(PRIVILEGED_LABELS) },
  { name: 'driftPolicy', legend: 'When someone switches enforcement off by hand at the provider', options: Object.entries(DRIFT_LABELS) },
  {
    name: 'awsPolicyVariant',
    legend: 'AWS IAM users: what the policy blocks until they use MFA',
    hint: 'AWS makes MFA mandatory by attaching a policy that refuses requests made without MFA. Requests signed with a long-term access key (scripts, the AWS command line) can never carry MFA. ' +
      'Before arming, the campaign page lists the access keys of the AWS users it would affect, and you confirm this choice there. Changing it later applies to people already made to use MFA at the next drift check.',
    options: Object.entries(POLICY_VARIANT_LABELS)
  }
]
// Where an error summary link for a radio group lands: its first choice.
export const CHOICE_ANCHORS = { targetKind: 'all', smsPolicy: 'counts', privilegedMethods: 'phishing_resistant', driftPolicy: 'reapply', awsPolicyVariant: 'console_and_api' }

/** What the admin typed, as typed: a form that comes back shows exactly this. */
/** What each field holds as typed (text), for showing the form again. */
export type FormValues = Record<typeof FIELD_ORDER[number], string>

export function blankForm (now: Date): FormValues {
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
    driftPolicy: 'reapply',
    awsPolicyVariant: 'console_and_api'
  }
}

export function formValues (body: CampaignForm): FormValues {
  return Object.fromEntries(FIELD_ORDER.map((field) => [field, body[field] ?? ''])) as FormValues
}

/**
 * Turns the form's text into a CampaignInput. Only what the text cannot say is reported here (no start date,
 * no target chosen); unreadable dates and numbers become Invalid Date / NaN, which the domain's rules reject
 * with their own message.
 */
export function parseForm (values: FormValues): { input: CampaignInput, problems: Record<string, string> } {
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
    driftPolicy: values.driftPolicy as CampaignInput['driftPolicy'],
    // Left out (a form from before the choice existed): AWS's documented policy, as before.
    awsPolicyVariant: (values.awsPolicyVariant.trim() === '' ? 'console_and_api' : values.awsPolicyVariant) as CampaignInput['awsPolicyVariant']
  }
  return { input, problems }
}

/** The form's own problems plus the domain's, so one round trip shows everything that needs fixing. */
export function withDomainProblems (input: CampaignInput, problems: Record<string, string>): Record<string, string> {
  try {
    validateCampaign(input)
  } catch (err) {
    if (!(err instanceof CampaignValidationError)) throw err
    return { ...err.fields, ...problems }
  }
  return problems
}

/** An existing campaign as the form shows it, for editing. */
export function campaignFormValues (campaign: Campaign): FormValues {
  return {
    name: campaign.name,
    targetKind: campaign.targetKind,
    targetValue: campaign.targetValue ?? '',
    startsAt: day(campaign.startsAt),
    deadline: day(campaign.deadline),
    privilegedDeadline: campaign.privilegedDeadline === null ? '' : day(campaign.privilegedDeadline),
    newUserWindowDays: String(campaign.newUserWindowDays),
    reminderOffsets: campaign.reminderOffsets.join(', '),
    maxExtensionDays: String(campaign.maxExtensionDays),
    softBlockDays: campaign.softBlockDays === null ? '' : String(campaign.softBlockDays),
    smsPolicy: campaign.smsPolicy,
    privilegedMethods: campaign.privilegedMethods,
    driftPolicy: campaign.driftPolicy,
    awsPolicyVariant: campaign.awsPolicyVariant
  }
}
