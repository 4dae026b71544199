import { armingRefusal, keyIdsOf, type AccessKeyListing, type CampaignAccessKeys } from './access-keys.ts'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { campaignDeadline, DEFAULT_SMS_SUNSET_GRACE_DAYS, type DeadlineSubject } from './deadlines.ts'
import type { Campaign, EnforcementEngine } from './engine.ts'
import { DomainError } from './errors.ts'
import { METHODS_REQUIRED } from './methods.ts'
import type { AwsPolicyVariant } from './provider.ts'
import type { Actor } from './users.ts'
import { breakerProblems, type BreakerThresholds } from './breaker.ts'
import { waveProblems, type WavePlan } from './waves.ts'
import type { Words } from './i18n.ts'

export interface CampaignInput {
  name: string
  targetKind: Campaign['targetKind']
  targetValue: string | null
  startsAt: Date
  deadline: Date
  privilegedDeadline: Date | null
  newUserWindowDays: number
  reminderOffsets: number[]
  maxExtensionDays: number
  smsPolicy: Campaign['smsPolicy']
  privilegedMethods: Campaign['privilegedMethods']
  softBlockDays: number | null
  driftPolicy: Campaign['driftPolicy']
  awsPolicyVariant: AwsPolicyVariant
  /** Absent: 'one' method. */
  methodsRequired?: Campaign['methodsRequired']
  /** The SMS sunset (absent or null: none), what text messages count as from then, and the grace of the new deadline. */
  smsSunsetAt?: Date | null
  smsAfterSunset?: Campaign['smsAfterSunset']
  smsSunsetGraceDays?: number
  /** Waves (absent: unchanged on an edit, none on creation; null: none) and the breaker's thresholds (absent: the defaults / unchanged). */
  waves?: WavePlan | null
  breaker?: BreakerThresholds
}

export interface CampaignStore {
  create(input: CampaignInput, createdBy: string | null, now: Date): Promise<Campaign>
  find(id: string): Promise<Campaign | undefined>
  /** Campaigns not archived, newest first. */
  list(): Promise<Campaign[]>
  setArmed(id: string, armedAt: Date | null, armedBy: string | null, now: Date): Promise<void>
  /** Stores the policy variant an admin confirmed and the access keys they saw; the campaign after the change. */
  confirmAccessKeys(id: string, review: NonNullable<Campaign['accessKeyReview']>, now: Date): Promise<Campaign>
  addExtension(userId: string, campaignId: string, days: number, reason: string, approvedBy: string | null, now: Date): Promise<void>
  extensionsFor(userId: string): Promise<Array<{ campaignId: string, days: number }>>
  addExemption(userId: string, exemption: { kind: 'break_glass' | 'service_account' | 'other', reason: string, owner: string, expiresAt: Date | null }, createdBy: string | null, now: Date): Promise<void>
  /** What the user's deadline depends on: when they joined (directory creation date, first seen) and privilege. */
  firstSeenAndPrivilege(userId: string): Promise<DeadlineSubject | undefined>
  /** Clears a drift flag; false when the user had none. */
  clearDriftFlag(userId: string): Promise<boolean>
  /** Replaces a campaign's settings (not its armed state); the stored campaign after the change. */
  update(id: string, input: CampaignInput, now: Date): Promise<Campaign>
  /** Marks an exemption revoked if it is still in force at `now`; what it was, or undefined when it was not. */
  revokeExemption(exemptionId: string, now: Date): Promise<{ userId: string, kind: ExemptionKind, reason: string } | undefined>
  /** Exemptions in force at `now` ('active'), or expired and revoked ones ('ended', most recent first). */
  listExemptions(status: 'active' | 'ended', now: Date, limit: number): Promise<ExemptionRecord[]>
}

export type ExemptionKind = 'break_glass' | 'service_account' | 'other'

export interface ExemptionInput {
  kind: ExemptionKind
  reason: string
  owner: string
  expiresAt: Date | null
}

/** An exemption as admins review it. */
export interface ExemptionRecord extends ExemptionInput {
  id: string
  userId: string
  email: string
  createdAt: Date
  createdByEmail: string | null
  revokedAt: Date | null
}

/**
 * Field-by-field problems with a campaign form: `fields` in English (the API's message, logs), `problems` as the
 * catalogue's words (`campaign-form.*`) for the form, in the reader's language.
 */
export class CampaignValidationError extends DomainError {
  readonly fields: Record<string, string>
  constructor (readonly problems: Record<string, Words & { english: string }>) {
    const fields = Object.fromEntries(Object.entries(problems).map(([field, problem]) => [field, problem.english]))
    super('invalid_campaign', `Please correct: ${Object.values(fields).join(' ')}`, { fields })
    this.fields = fields
  }
}

export const DEFAULT_REMINDER_OFFSETS = [30, 14, 7, 3, 1]

/** Each problem's English, for the API's message (the form says the catalogue's `campaign-form.<problem>`). */
const PROBLEMS = {
  name: 'Give the campaign a name of up to 100 characters.',
  target_group: 'Name the group to target.',
  target_provider: 'Name the provider to target.',
  deadline_missing: 'Enter a deadline date.',
  deadline_before_start: 'The deadline must be after the start.',
  privileged_deadline: 'The deadline for privileged users must fall between the start and the main deadline.',
  new_user_window: 'The new-user window is a whole number of days from 0 to 365.',
  max_extension: 'The extension budget is a whole number of days from 0 to 365.',
  soft_block_range: 'The soft-block stage is a whole number of days from 1 to 90, or empty for none.',
  soft_block_too_long: 'The soft-block stage must be shorter than the time between the start and the deadline.',
  sms_policy: 'Choose whether text messages count.',
  privileged_methods: 'Choose what privileged users need.',
  methods_required: 'Choose how many methods a user needs.',
  sms_sunset_invalid: 'Enter the date text messages stop counting as a date, such as 2027-06-30.',
  sms_sunset_before_start: 'Text messages can stop counting only after the campaign starts.',
  sms_after_sunset: 'Choose what text messages count as after that date.',
  sms_after_sunset_weak: 'Text messages already count as weak or not at all: after the date they can only count for less.',
  sms_sunset_nothing: 'Text messages do not count in this campaign, so there is nothing to retire.',
  sms_sunset_grace: 'The grace period after the date is a whole number of days from 1 to 365.',
  drift_policy: 'Choose what happens when enforcement is switched off by hand.',
  aws_policy: 'Choose which policy AWS users get.',
  reminders: 'Reminders are whole numbers of days before the deadline, from 0 to 365.'
} as const

export function validateCampaign (input: CampaignInput): void {
  const fields: Record<string, Words & { english: string }> = {}
  const say = (problem: keyof typeof PROBLEMS): Words & { english: string } => ({ key: `campaign-form.${problem}`, english: PROBLEMS[problem] })
  if (input.name.trim() === '' || input.name.length > 100) fields.name = say('name')
  if (input.targetKind !== 'all' && input.targetKind !== 'privileged' && (input.targetValue ?? '').trim() === '') {
    fields.targetValue = say(input.targetKind === 'group' ? 'target_group' : 'target_provider')
  }
  if (Number.isNaN(input.deadline.getTime())) fields.deadline = say('deadline_missing')
  else if (input.deadline <= input.startsAt) fields.deadline = say('deadline_before_start')
  if (input.privilegedDeadline !== null && (Number.isNaN(input.privilegedDeadline.getTime()) || input.privilegedDeadline > input.deadline || input.privilegedDeadline <= input.startsAt)) {
    fields.privilegedDeadline = say('privileged_deadline')
  }
  if (!Number.isInteger(input.newUserWindowDays) || input.newUserWindowDays < 0 || input.newUserWindowDays > 365) fields.newUserWindowDays = say('new_user_window')
  if (!Number.isInteger(input.maxExtensionDays) || input.maxExtensionDays < 0 || input.maxExtensionDays > 365) fields.maxExtensionDays = say('max_extension')
  if (input.softBlockDays !== null) {
    const graceDays = (input.deadline.getTime() - input.startsAt.getTime()) / 86_400_000
    if (!Number.isInteger(input.softBlockDays) || input.softBlockDays < 1 || input.softBlockDays > 90) fields.softBlockDays = say('soft_block_range')
    else if (input.softBlockDays >= graceDays) fields.softBlockDays = say('soft_block_too_long')
  }
  if (!['counts', 'weak', 'excluded'].includes(input.smsPolicy)) fields.smsPolicy = say('sms_policy')
  if (!['phishing_resistant', 'any'].includes(input.privilegedMethods)) fields.privilegedMethods = say('privileged_methods')
  if (input.methodsRequired !== undefined && !METHODS_REQUIRED.includes(input.methodsRequired)) fields.methodsRequired = say('methods_required')
  if (input.smsSunsetAt != null && Number.isNaN(input.smsSunsetAt.getTime())) fields.smsSunsetAt = say('sms_sunset_invalid')
  else if (input.smsSunsetAt != null && input.smsSunsetAt <= input.startsAt) fields.smsSunsetAt = say('sms_sunset_before_start')
  if (input.smsAfterSunset !== undefined && !['weak', 'excluded'].includes(input.smsAfterSunset)) fields.smsAfterSunset = say('sms_after_sunset')
  else if (input.smsSunsetAt != null && (input.smsAfterSunset ?? 'excluded') === 'weak' && input.smsPolicy !== 'counts') fields.smsAfterSunset = say('sms_after_sunset_weak')
  else if (input.smsSunsetAt != null && input.smsPolicy === 'excluded') fields.smsSunsetAt = say('sms_sunset_nothing')
  if (input.smsSunsetGraceDays !== undefined && (!Number.isInteger(input.smsSunsetGraceDays) || input.smsSunsetGraceDays < 1 || input.smsSunsetGraceDays > 365)) {
    fields.smsSunsetGraceDays = say('sms_sunset_grace')
  }
  if (!['reapply', 'flag'].includes(input.driftPolicy)) fields.driftPolicy = say('drift_policy')
  if (!['console_and_api', 'console_only'].includes(input.awsPolicyVariant)) fields.awsPolicyVariant = say('aws_policy')
  if (input.reminderOffsets.some((d) => !Number.isInteger(d) || d < 0 || d > 365)) fields.reminderOffsets = say('reminders')
  Object.assign(fields, waveProblems(input.waves), breakerProblems(input.breaker))
  if (Object.keys(fields).length > 0) throw new CampaignValidationError(fields)
}

/** What can be wrong with one field of an exemption (the form says it in words: locales/…/exemptions.json). */
export type ExemptionProblem = 'kind_unknown' | 'reason_required' | 'owner_required' | 'expiry_invalid' | 'expiry_required'

/**
 * Everything wrong with an exemption at once, by field, as problem codes, so a form can show every problem in one
 * round trip. (`exempt` checks the same rules again itself.)
 */
export function exemptionProblems (input: ExemptionInput, now: Date): Record<string, ExemptionProblem> {
  const fields: Record<string, ExemptionProblem> = {}
  if (!['break_glass', 'service_account', 'other'].includes(input.kind)) fields.kind = 'kind_unknown'
  if (input.reason.trim().length < 3) fields.reason = 'reason_required'
  if (input.owner.trim() === '') fields.owner = 'owner_required'
  if (input.expiresAt !== null && Number.isNaN(input.expiresAt.getTime())) fields.expiresAt = 'expiry_invalid'
  else if (input.kind !== 'break_glass' && (input.expiresAt === null || input.expiresAt <= now)) fields.expiresAt = 'expiry_required'
  return fields
}

/**
 * The method-count and SMS-sunset settings an input leaves out (a form or script that predates them): on an edit
 * the campaign's own values stay, on creation the defaults apply (one method, no sunset, 30 days' grace).
 */
export function withPolicyDefaults (input: CampaignInput, base?: Campaign): CampaignInput {
  return {
    ...input,
    methodsRequired: input.methodsRequired ?? base?.methodsRequired ?? 'one',
    smsSunsetAt: input.smsSunsetAt === undefined ? base?.smsSunsetAt ?? null : input.smsSunsetAt,
    smsAfterSunset: input.smsAfterSunset ?? base?.smsAfterSunset ?? 'excluded',
    smsSunsetGraceDays: input.smsSunsetGraceDays ?? base?.smsSunsetGraceDays ?? DEFAULT_SMS_SUNSET_GRACE_DAYS
  }
}

/** The fields of a campaign that an edit changed, each as { from, to } in a form fit for the audit log. */
export function campaignChanges (before: Campaign, after: CampaignInput): Record<string, { from: unknown, to: unknown }> {
  const shown = (value: unknown): unknown => value instanceof Date ? value.toISOString() : Array.isArray(value) ? value.join(',') : typeof value === 'object' && value !== null ? JSON.stringify(value) : value
  const changes: Record<string, { from: unknown, to: unknown }> = {}
  for (const field of CAMPAIGN_FIELDS) {
    const from = shown(before[field])
    const to = shown(after[field])
    if (from !== to) changes[field] = { from, to }
  }
  return changes
}

const CAMPAIGN_FIELDS = ['name', 'targetKind', 'targetValue', 'startsAt', 'deadline', 'privilegedDeadline', 'newUserWindowDays', 'reminderOffsets',
  'maxExtensionDays', 'smsPolicy', 'privilegedMethods', 'softBlockDays', 'driftPolicy', 'awsPolicyVariant',
  'methodsRequired', 'smsSunsetAt', 'smsAfterSunset', 'smsSunsetGraceDays', 'waves', 'breaker'] as const satisfies ReadonlyArray<keyof CampaignInput>

/** Campaigns, extensions and exemptions: every change audited, and users' states brought up to date. */
export class CampaignService {
  constructor (
    private readonly store: CampaignStore,
    private readonly engine: EnforcementEngine,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    /** The due AWS users' access keys (null: AWS is not connected, so there are none to check). */
    private readonly accessKeys: Pick<CampaignAccessKeys, 'list'> | null = null
  ) {}

  /** A new campaign starts disarmed: deadlines and reminders run, nothing is flipped until an admin arms it. */
  async create (input: CampaignInput, actor: Actor): Promise<Campaign> {
    validateCampaign(input)
    this.assertSunsetAhead(input.smsSunsetAt ?? null, null)
    const campaign = await this.store.create({ ...withPolicyDefaults(input), name: input.name.trim(), reminderOffsets: [...new Set(input.reminderOffsets)].sort((a, b) => b - a) }, actor.id, this.clock.now())
    await this.audit.append({ action: 'campaign.created', actorId: actor.id, actorLabel: actor.label, details: { campaignId: campaign.id, name: campaign.name, deadline: campaign.deadline.toISOString() }, ip: actor.ip, userAgent: actor.userAgent })
    await this.engine.refreshAll()
    return campaign
  }

  async list (): Promise<Campaign[]> {
    return this.store.list()
  }

  async find (campaignId: string): Promise<Campaign | undefined> {
    return this.store.find(campaignId)
  }

  /**
   * Arms without reading anyone's AWS access keys: for campaigns known to need no such check (tests, scripts that
   * ran it themselves). Admins arm through armChecked.
   */
  async arm (campaignId: string, actor: Actor): Promise<void> {
    await this.setArmed(campaignId, true, actor)
  }

  /**
   * Arms, unless the campaign's due AWS users hold active access keys that an admin has not confirmed with the
   * campaign's policy choice (issue #14 item 11): AWS's documented policy would stop those keys working, so nobody
   * arms it without having seen who holds them. Keys that could not be read block arming too.
   */
  async armChecked (campaignId: string, actor: Actor): Promise<void> {
    const campaign = await this.store.find(campaignId)
    if (campaign === undefined) throw new DomainError('campaign_not_found', 'No such campaign.')
    if (campaign.armedAt !== null) return
    const listing = await this.dueAccessKeys(campaign)
    const refusal = listing === null ? null : armingRefusal(campaign, listing)
    if (refusal !== null && listing !== null) {
      await this.audit.append({ action: 'campaign.arming_refused', actorId: actor.id, actorLabel: actor.label, details: { campaignId, name: campaign.name, reason: refusal }, ip: actor.ip, userAgent: actor.userAgent })
      // The same refusal as values, for the reader's language (errors.access_keys_unconfirmed).
      const review = campaign.accessKeyReview
      const unseen = review === null ? 0 : keyIdsOf(listing).filter((id) => !review.keyIds.includes(id)).length
      throw new DomainError('access_keys_unconfirmed', refusal, { unchecked: listing.unchecked, users: listing.users.length, unseen, error: listing.firstError ?? 'no reason given' })
    }
    await this.setArmed(campaignId, true, actor)
  }

  /** The active access keys of the AWS users arming the campaign (or its next sweep) would act on; null without AWS. */
  async dueAccessKeys (campaign: Campaign): Promise<AccessKeyListing | null> {
    return this.accessKeys === null ? null : await this.accessKeys.list(campaign)
  }

  /**
   * An admin chose the AWS policy with the due users' access keys in view (`seenKeyIds`, the ones the page showed).
   * The keys are read again: one the admin has not seen (created since) means the page is out of date, and nothing
   * is recorded. Audited with who holds keys.
   */
  async confirmAwsPolicy (campaignId: string, variant: AwsPolicyVariant, seenKeyIds: readonly string[], actor: Actor): Promise<Campaign> {
    const campaign = await this.store.find(campaignId)
    if (campaign === undefined) throw new DomainError('campaign_not_found', 'No such campaign.')
    if (!['console_and_api', 'console_only'].includes(variant)) throw new CampaignValidationError({ awsPolicyVariant: { key: 'campaign-form.aws_policy', english: PROBLEMS.aws_policy } })
    const listing = await this.dueAccessKeys(campaign)
    if (listing !== null && listing.unchecked > 0) {
      throw new DomainError('access_keys_unreadable', `The access keys of ${listing.unchecked} AWS user${listing.unchecked === 1 ? '' : 's'} could not be read (${listing.firstError ?? 'no reason given'}). Try again when AWS answers.`,
        { count: listing.unchecked, error: listing.firstError ?? 'no reason given' })
    }
    const keyIds = listing === null ? [] : keyIdsOf(listing)
    const unseen = keyIds.filter((id) => !seenKeyIds.includes(id))
    if (unseen.length > 0) {
      throw new DomainError('access_keys_changed', `${unseen.length} access key${unseen.length === 1 ? ' was' : 's were'} created since this page was shown. Look at the list again, then confirm.`, { count: unseen.length })
    }
    const now = this.clock.now()
    const updated = await this.store.confirmAccessKeys(campaignId, { variant, keyIds, at: now, by: actor.id }, now)
    await this.audit.append({
      action: 'campaign.aws_policy_confirmed',
      actorId: actor.id,
      actorLabel: actor.label,
      details: {
        campaignId, name: campaign.name, variant, from: campaign.awsPolicyVariant, keys: keyIds.length,
        usersWithKeys: (listing?.users ?? []).slice(0, 100).map((u) => ({ userName: u.userName, keys: u.keys.map((k) => k.accessKeyId) }))
      },
      ip: actor.ip,
      userAgent: actor.userAgent
    })
    if (variant !== campaign.awsPolicyVariant) await this.engine.refreshAll()
    return updated
  }

  async disarm (campaignId: string, actor: Actor): Promise<void> {
    await this.setArmed(campaignId, false, actor)
  }

  /** Extends one user's deadline within the campaign's budget; needs a reason; never moves it earlier. */
  async extend (userId: string, campaignId: string, days: number, reason: string, actor: Actor): Promise<Date> {
    const campaign = await this.store.find(campaignId)
    if (campaign === undefined) throw new DomainError('campaign_not_found', 'No such campaign.')
    const subject = await this.store.firstSeenAndPrivilege(userId)
    if (subject === undefined) throw new DomainError('user_not_found', 'No such user.')
    if (!Number.isInteger(days) || days < 1) throw new DomainError('invalid_extension', 'An extension is a whole number of days, at least 1.')
    if (reason.trim().length < 3) throw new DomainError('reason_required', 'Say why the deadline is being extended.', { variant: 'extension' })
    const current = campaignDeadline(campaign, subject, await this.store.extensionsFor(userId))
    if (days > current.extensionDaysLeft) {
      throw new DomainError('extension_over_budget', `This campaign allows ${campaign.maxExtensionDays} extra days per person; ${current.extensionDaysLeft} are left for this user.`, { max: campaign.maxExtensionDays, left: current.extensionDaysLeft })
    }
    await this.store.addExtension(userId, campaignId, days, reason.trim(), actor.id, this.clock.now())
    const after = campaignDeadline(campaign, subject, await this.store.extensionsFor(userId))
    await this.audit.append({ action: 'deadline.extended', actorId: actor.id, actorLabel: actor.label, subjectUserId: userId, details: { campaignId, days, reason: reason.trim(), from: current.deadline.toISOString(), to: after.deadline.toISOString() }, ip: actor.ip, userAgent: actor.userAgent })
    // A new deadline is a fresh start: a failure from before it does not hold the user in attention when it passes.
    await this.engine.clearFailure(userId)
    await this.engine.refreshUser(userId)
    return after.deadline
  }

  /** Exempts a user. Service accounts and "other" need an expiry; break-glass accounts need a passkey (else attention). */
  async exempt (userId: string, exemption: { kind: 'break_glass' | 'service_account' | 'other', reason: string, owner: string, expiresAt: Date | null }, actor: Actor): Promise<void> {
    if (exemption.reason.trim().length < 3) throw new DomainError('reason_required', 'Say why this account is exempt.', { variant: 'exemption' })
    if (exemption.owner.trim() === '') throw new DomainError('owner_required', 'Name the person responsible for this account.')
    if (exemption.kind !== 'break_glass' && (exemption.expiresAt === null || exemption.expiresAt <= this.clock.now())) {
      throw new DomainError('expiry_required', 'Exemptions other than break-glass accounts need an expiry date in the future.')
    }
    if (await this.store.firstSeenAndPrivilege(userId) === undefined) throw new DomainError('user_not_found', 'No such user.')
    await this.store.addExemption(userId, { ...exemption, reason: exemption.reason.trim(), owner: exemption.owner.trim() }, actor.id, this.clock.now())
    await this.audit.append({ action: 'exemption.added', actorId: actor.id, actorLabel: actor.label, subjectUserId: userId, details: { kind: exemption.kind, reason: exemption.reason.trim(), owner: exemption.owner.trim(), expiresAt: exemption.expiresAt?.toISOString() ?? null }, ip: actor.ip, userAgent: actor.userAgent })
    await this.engine.clearFailure(userId)
    await this.engine.refreshUser(userId)
  }

  /**
   * Changes a campaign's settings (armed or not; arming stays a separate, deliberate step). Audited with the
   * fields that changed; every user's deadline and state is re-derived. An edit that changes nothing records nothing.
   */
  async update (campaignId: string, input: CampaignInput, actor: Actor): Promise<{ campaign: Campaign, changed: string[] }> {
    const before = await this.store.find(campaignId)
    if (before === undefined) throw new DomainError('campaign_not_found', 'No such campaign.')
    const normalised = { ...withPolicyDefaults(input, before), waves: input.waves === undefined ? before.waves : input.waves, breaker: input.breaker ?? before.breaker, name: input.name.trim(), reminderOffsets: [...new Set(input.reminderOffsets)].sort((a, b) => b - a) }
    validateCampaign(normalised)
    this.assertSunsetAhead(normalised.smsSunsetAt ?? null, before.smsSunsetAt)
    const changes = campaignChanges(before, normalised)
    if (Object.keys(changes).length === 0) return { campaign: before, changed: [] }
    const after = await this.store.update(campaignId, normalised, this.clock.now())
    await this.audit.append({ action: 'campaign.updated', actorId: actor.id, actorLabel: actor.label, details: { campaignId, name: after.name, changes }, ip: actor.ip, userAgent: actor.userAgent })
    await this.engine.refreshAll()
    return { campaign: after, changed: Object.keys(changes) }
  }

  /** Exemptions in force now, or those that ended (expired or revoked), for admins to review. */
  async exemptions (status: 'active' | 'ended', limit = 200): Promise<ExemptionRecord[]> {
    return this.store.listExemptions(status, this.clock.now(), limit)
  }

  /**
   * Ends an exemption now: audited, and the user's state re-derived (their campaign deadline applies again, and a
   * failure from before the exemption no longer holds them back, so a passed deadline is enforced at the next sweep).
   */
  async revokeExemption (exemptionId: string, actor: Actor): Promise<void> {
    const revoked = await this.store.revokeExemption(exemptionId, this.clock.now())
    if (revoked === undefined) throw new DomainError('exemption_not_active', 'This exemption has already ended or does not exist.')
    await this.audit.append({ action: 'exemption.revoked', actorId: actor.id, actorLabel: actor.label, subjectUserId: revoked.userId, details: { exemptionId, kind: revoked.kind, reason: revoked.reason }, ip: actor.ip, userAgent: actor.userAgent })
    await this.engine.clearFailure(revoked.userId)
    await this.engine.refreshUser(revoked.userId)
  }

  /** After flagged drift, an admin decides to put enforcement back: the next sweep re-applies it. */
  async reapplyAfterDrift (userId: string, actor: Actor): Promise<void> {
    if (!await this.store.clearDriftFlag(userId)) throw new DomainError('no_drift', 'This user has no flagged drift to act on.')
    await this.audit.append({ action: 'enforcement.drift_reapply_approved', actorId: actor.id, actorLabel: actor.label, subjectUserId: userId, details: {}, ip: actor.ip, userAgent: actor.userAgent })
    await this.engine.refreshUser(userId)
  }

  /**
   * A new SMS sunset date must not lie before today (UTC): its grace period counts from the date, so a date long
   * past would flip people at once, which the sunset must never do. An unchanged date may have passed.
   */
  private assertSunsetAhead (sunsetAt: Date | null, before: Date | null): void {
    if (sunsetAt === null || Number.isNaN(sunsetAt.getTime()) || sunsetAt.getTime() === before?.getTime()) return
    const today = new Date(this.clock.now().toISOString().slice(0, 10) + 'T00:00:00Z')
    if (sunsetAt < today) throw new CampaignValidationError({ smsSunsetAt: { key: 'campaign-form.sms_sunset_past', english: 'The date text messages stop counting must be today or later.' } })
  }

  private async setArmed (campaignId: string, armed: boolean, actor: Actor): Promise<void> {
    const campaign = await this.store.find(campaignId)
    if (campaign === undefined) throw new DomainError('campaign_not_found', 'No such campaign.')
    if ((campaign.armedAt !== null) === armed) return
    await this.store.setArmed(campaignId, armed ? this.clock.now() : null, armed ? actor.id : null, this.clock.now())
    // Arming is a deliberate fresh start: failures from before it was disarmed are tried again by the next sweep.
    const retried = armed ? await this.engine.clearCampaignFailures(campaignId) : 0
    await this.audit.append({ action: armed ? 'campaign.armed' : 'campaign.disarmed', actorId: actor.id, actorLabel: actor.label, details: { campaignId, name: campaign.name, ...(retried > 0 ? { failuresRetried: retried } : {}) }, ip: actor.ip, userAgent: actor.userAgent })
    await this.engine.refreshAll()
  }
}
