/** The campaign form (new and edit): its fields, choices and labels, and how typed text becomes a CampaignInput. */
import { Type, type Static } from '@sinclair/typebox'
import { CampaignValidationError, DEFAULT_REMINDER_OFFSETS, validateCampaign, type CampaignInput } from '../../domain/campaigns.ts'
import { DEFAULT_SMS_SUNSET_GRACE_DAYS } from '../../domain/deadlines.ts'
import type { Campaign } from '../../domain/engine.ts'
import { DEFAULT_BREAKER, type BreakerThresholds } from '../../domain/breaker.ts'
import type { WavePlan } from '../../domain/waves.ts'
import type { Words } from '../../domain/i18n.ts'
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
  methodsRequired: Type.Optional(Type.String({ maxLength: 40 })),
  smsSunsetAt: Type.Optional(Type.String({ maxLength: 40 })),
  smsAfterSunset: Type.Optional(Type.String({ maxLength: 40 })),
  smsSunsetGraceDays: Type.Optional(Type.String({ maxLength: 20 })),
  wavePilotKind: Type.Optional(Type.String({ maxLength: 20 })),
  wavePilot: Type.Optional(Type.String({ maxLength: 200 })),
  waveOffsets: Type.Optional(Type.String({ maxLength: 200 })),
  breakerPasses: Type.Optional(Type.String({ maxLength: 20 })),
  breakerFailures: Type.Optional(Type.String({ maxLength: 20 })),
  breakerNotMe: Type.Optional(Type.String({ maxLength: 20 })),
  breakerMinFlips: Type.Optional(Type.String({ maxLength: 20 })),
  _csrf: Type.Optional(Type.String())
})
export type CampaignForm = Static<typeof CampaignBody>

/** The form's fields in page order, so the error summary reads top to bottom like the form. */
export const FIELD_ORDER = ['name', 'targetKind', 'targetValue', 'startsAt', 'deadline', 'privilegedDeadline', 'newUserWindowDays', 'reminderOffsets', 'maxExtensionDays', 'softBlockDays',
  'smsSunsetAt', 'smsSunsetGraceDays', 'smsPolicy', 'smsAfterSunset', 'methodsRequired', 'privilegedMethods', 'driftPolicy', 'awsPolicyVariant',
  'wavePilotKind', 'wavePilot', 'waveOffsets', 'breakerPasses', 'breakerFailures', 'breakerNotMe', 'breakerMinFlips'] as const

// The choices' words are catalogue keys (locales/<language>/campaign-form.json), translated when the page is written.
export const SMS_LABELS: Record<Campaign['smsPolicy'], string> = {
  counts: 'campaign-form.choice_smsPolicy_counts',
  weak: 'campaign-form.choice_smsPolicy_weak',
  excluded: 'campaign-form.choice_smsPolicy_excluded'
}
export const SMS_AFTER_SUNSET_LABELS: Record<Campaign['smsAfterSunset'], string> = {
  excluded: 'campaign-form.choice_smsAfterSunset_excluded',
  weak: 'campaign-form.choice_smsAfterSunset_weak'
}
export const METHODS_REQUIRED_LABELS: Record<Campaign['methodsRequired'], string> = {
  one: 'campaign-form.choice_methodsRequired_one',
  two: 'campaign-form.choice_methodsRequired_two',
  one_plus_recovery: 'campaign-form.choice_methodsRequired_one_plus_recovery'
}
export const PRIVILEGED_LABELS: Record<Campaign['privilegedMethods'], string> = {
  phishing_resistant: 'campaign-form.choice_privilegedMethods_phishing_resistant',
  any: 'campaign-form.choice_privilegedMethods_any'
}
export const DRIFT_LABELS: Record<Campaign['driftPolicy'], string> = {
  reapply: 'campaign-form.choice_driftPolicy_reapply',
  flag: 'campaign-form.choice_driftPolicy_flag'
}
export const POLICY_VARIANT_KEYS: Record<Campaign['awsPolicyVariant'], string> = {
  console_and_api: 'campaign-form.choice_awsPolicyVariant_console_and_api',
  console_only: 'campaign-form.choice_awsPolicyVariant_console_only'
}
export const CHOICES: Array<{ name: string, legend: string, hint?: string, options: Array<[string, string]> }> = [
  { name: 'smsPolicy', legend: 'campaign-form.legend_smsPolicy', options: Object.entries(SMS_LABELS) },
  { name: 'smsAfterSunset', legend: 'campaign-form.legend_smsAfterSunset', hint: 'campaign-form.hint_smsAfterSunset', options: Object.entries(SMS_AFTER_SUNSET_LABELS) },
  { name: 'methodsRequired', legend: 'campaign-form.legend_methodsRequired', hint: 'campaign-form.hint_methodsRequired', options: Object.entries(METHODS_REQUIRED_LABELS) },
  { name: 'privilegedMethods', legend: 'campaign-form.legend_privilegedMethods', options: Object.entries(PRIVILEGED_LABELS) },
  { name: 'driftPolicy', legend: 'campaign-form.legend_driftPolicy', options: Object.entries(DRIFT_LABELS) },
  { name: 'awsPolicyVariant', legend: 'campaign-form.legend_awsPolicyVariant', hint: 'campaign-form.hint_awsPolicyVariant', options: Object.entries(POLICY_VARIANT_KEYS) }
]
// Where an error summary link for a radio group lands: its first choice.
export const CHOICE_ANCHORS = { targetKind: 'all', smsPolicy: 'counts', smsAfterSunset: 'excluded', methodsRequired: 'one', privilegedMethods: 'phishing_resistant', driftPolicy: 'reapply', awsPolicyVariant: 'console_and_api' }

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
    awsPolicyVariant: 'console_and_api',
    methodsRequired: 'one',
    smsSunsetAt: '',
    smsAfterSunset: 'excluded',
    smsSunsetGraceDays: String(DEFAULT_SMS_SUNSET_GRACE_DAYS),
    ...waveAndBreakerValues(null, DEFAULT_BREAKER)
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
export function parseForm (values: FormValues): { input: CampaignInput, problems: Record<string, Words> } {
  const problems: Record<string, Words> = {}
  const targetKind = TARGET_KINDS.find((kind) => kind === values.targetKind)
  if (targetKind === undefined) problems.targetKind = { key: 'campaign-form.target_kind' }
  const startsAt = parseDay(values.startsAt)
  if (startsAt === null || Number.isNaN(startsAt.getTime())) problems.startsAt = { key: 'campaign-form.starts_at' }
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
    awsPolicyVariant: (values.awsPolicyVariant.trim() === '' ? 'console_and_api' : values.awsPolicyVariant) as CampaignInput['awsPolicyVariant'],
    methodsRequired: (values.methodsRequired.trim() === '' ? 'one' : values.methodsRequired) as CampaignInput['methodsRequired'],
    smsSunsetAt: parseDay(values.smsSunsetAt),
    smsAfterSunset: (values.smsAfterSunset.trim() === '' ? 'excluded' : values.smsAfterSunset) as CampaignInput['smsAfterSunset'],
    smsSunsetGraceDays: values.smsSunsetGraceDays.trim() === '' ? DEFAULT_SMS_SUNSET_GRACE_DAYS : parseWhole(values.smsSunsetGraceDays),
    ...parseWavesAndBreaker(values)
  }
  if (!['', 'none', 'group', 'share'].includes(values.wavePilotKind)) problems.wavePilotKind = { key: 'campaign-form.wave_pilot_kind' }
  return { input, problems }
}

/** The form's own problems plus the domain's, so one round trip shows everything that needs fixing. */
export function withDomainProblems (input: CampaignInput, problems: Record<string, Words>): Record<string, Words> {
  try {
    validateCampaign(input)
  } catch (err) {
    if (!(err instanceof CampaignValidationError)) throw err
    return { ...err.problems, ...problems }
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
    awsPolicyVariant: campaign.awsPolicyVariant,
    methodsRequired: campaign.methodsRequired,
    smsSunsetAt: campaign.smsSunsetAt === null ? '' : day(campaign.smsSunsetAt),
    smsAfterSunset: campaign.smsAfterSunset,
    smsSunsetGraceDays: String(campaign.smsSunsetGraceDays),
    ...waveAndBreakerValues(campaign.waves, campaign.breaker)
  }
}

/** The waves and breaker fields as the form shows them. */
function waveAndBreakerValues (plan: WavePlan | null, breaker: BreakerThresholds) {
  return {
    wavePilotKind: plan === null ? 'none' : plan.pilot.kind,
    wavePilot: plan === null ? '' : plan.pilot.kind === 'group' ? plan.pilot.group : String(plan.pilot.percent),
    waveOffsets: plan === null ? '' : plan.offsetsDays.join(', '),
    breakerPasses: String(breaker.passesPer100),
    breakerFailures: String(breaker.failurePercent),
    breakerNotMe: String(breaker.notMePer100),
    breakerMinFlips: String(breaker.minFlips)
  }
}

/**
 * Waves: none, a pilot group, or a pilot share in percent, then the later waves' offsets in days ("7, 14"). Left out
 * (a form from before waves): unchanged. Thresholds left empty keep the defaults (or the campaign's own on an edit).
 */
function parseWavesAndBreaker (values: FormValues): Pick<CampaignInput, 'waves' | 'breaker'> {
  const offsetsDays = values.waveOffsets.split(/[\s,]+/).filter((part) => part !== '').map(parseWhole)
  const kind = values.wavePilotKind
  const waves: WavePlan | null | undefined = kind === '' ? undefined : kind === 'group'
    ? { pilot: { kind: 'group', group: values.wavePilot.trim() }, offsetsDays }
    : kind === 'share' ? { pilot: { kind: 'share', percent: values.wavePilot.trim() === '' ? Number.NaN : Number(values.wavePilot.trim().replace(/%$/, '')) }, offsetsDays } : null
  const thresholds = [values.breakerPasses, values.breakerFailures, values.breakerNotMe, values.breakerMinFlips]
  const breaker = thresholds.every((v) => v.trim() === '')
    ? undefined
    : {
        passesPer100: values.breakerPasses.trim() === '' ? DEFAULT_BREAKER.passesPer100 : parseWhole(values.breakerPasses),
        failurePercent: values.breakerFailures.trim() === '' ? DEFAULT_BREAKER.failurePercent : parseWhole(values.breakerFailures),
        notMePer100: values.breakerNotMe.trim() === '' ? DEFAULT_BREAKER.notMePer100 : parseWhole(values.breakerNotMe),
        minFlips: values.breakerMinFlips.trim() === '' ? DEFAULT_BREAKER.minFlips : parseWhole(values.breakerMinFlips)
      }
  return { ...(waves === undefined ? {} : { waves }), ...(breaker === undefined ? {} : { breaker }) }
}
