import { randomInt } from 'node:crypto'
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import type { ChangeContext, EnrollmentGuard } from './enrollment-guard.ts'
import { DomainError } from './errors.ts'
import type { Localiser, Translator } from './i18n.ts'
import type { KeyedHasher } from './keyed-hash.ts'
import type { MethodLifecycle } from './method-lifecycle.ts'
import type { AuthMethod, MethodStore } from './methods.ts'
import type { SmsSender } from './notifications.ts'
import type { PendingEnrollment, PendingStore } from './pending.ts'
import type { SmsSendLimits } from './sms-limits.ts'
import { normaliseCode } from './totp.ts'
import type { User } from './users.ts'

export const PHONE_RULES = {
  codeLifetimeMs: 10 * 60_000,
  maxAttempts: 5,
  resendAfterMs: 60_000,
  maxSendsPerHour: 5
} as const

/** Parses what a person typed into E.164, or explains why it is not a usable mobile number. */
export function parsePhone (input: string, defaultRegion: CountryCode): string {
  const text = input.trim()
  if (text === '') throw new DomainError('invalid_phone', 'Enter your mobile number.', { variant: 'empty' })
  if (text.length > 40) throw new DomainError('invalid_phone', 'That is too long to be a phone number.', { variant: 'too_long' })
  const parsed = parsePhoneNumberFromString(text, defaultRegion)
  if (parsed === undefined || !parsed.isValid()) {
    throw new DomainError('invalid_phone', `"${text}" is not a valid phone number. Include the country code if it is not a ${defaultRegion} number, e.g. +44 7911 123456.`, { variant: 'invalid', text, region: defaultRegion })
  }
  const type = parsed.getType()
  if (type !== undefined && type !== 'MOBILE' && type !== 'FIXED_LINE_OR_MOBILE' && type !== 'PERSONAL_NUMBER') {
    throw new DomainError('invalid_phone', 'That number cannot receive text messages. Enter a mobile number.', { variant: 'not_mobile' })
  }
  return parsed.number
}

/** "+1 202 555 0143" for display; the last digits only where the number should not be shown in full. */
export function maskPhone (e164: string): string {
  return `•••• ${e164.slice(-4)}`
}

export type PhoneSource = { mode: 'self' } | { mode: 'directory' }

/**
 * Phones verified by a 6-digit text-message code: the code is stored only as a keyed hash, lives 10 minutes,
 * allows 5 attempts, and can be resent after 60 s, at most 5 times an hour per user. Every text also passes the
 * toll-fraud limits (allowed countries; hourly caps per number, per address and overall: SmsSendLimits).
 */
export class PhoneService {
  constructor (
    private readonly methods: MethodStore,
    private readonly pending: PendingStore,
    private readonly sms: SmsSender,
    private readonly smsLimits: SmsSendLimits,
    private readonly hasher: KeyedHasher,
    private readonly guard: EnrollmentGuard,
    private readonly lifecycle: MethodLifecycle,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    /** `localiser` writes the text message in the user's saved language when the caller passes no translator. */
    private readonly settings: { source: 'self' | 'directory', defaultRegion: CountryCode, organisation: string, localiser: Localiser }
  ) {}

  /** In pinned mode, the number the user must confirm (from the directory), or null when there is none. */
  pinnedNumber (user: User): string | null {
    return this.settings.source === 'directory' ? user.phone : null
  }

  get pinned (): boolean {
    return this.settings.source === 'directory'
  }

  /**
   * Sends a code to the number (the directory's number in pinned mode; any posted number is refused there). The text
   * is written with `reader` (the page's language), else in the user's saved language.
   */
  async begin (user: User, numberInput: string | undefined, context: ChangeContext, reader?: Translator): Promise<PendingEnrollment> {
    this.guard.assertMayAdd(user, await this.methods.countFor(user.id), context)
    let phone: string
    if (this.pinned) {
      if (numberInput !== undefined && numberInput.trim() !== '') {
        await this.audit.append({ action: 'phone.pinned_number_refused', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: {} })
        throw new DomainError('phone_pinned', 'Your organisation sets your mobile number from its directory, so another number cannot be used. If the number shown is wrong, contact your helpdesk.')
      }
      if (user.phone === null) throw new DomainError('no_directory_phone', 'Your organisation has no mobile number on record for you. Contact your helpdesk to have it added.')
      phone = user.phone
    } else {
      phone = parsePhone(numberInput ?? '', this.settings.defaultRegion)
    }
    if ((await this.methods.listFor(user.id)).some((m) => m.kind === 'phone' && m.phone === phone)) {
      throw new DomainError('phone_exists', 'This number is already one of your sign-in methods.')
    }
    return this.sendCode(user, 'phone', phone, context.clientIp, reader)
  }

  async resend (user: User, context: ChangeContext, reader?: Translator): Promise<PendingEnrollment> {
    this.guard.assertMayAdd(user, await this.methods.countFor(user.id), context)
    return this.resendCode(user, 'phone', context.clientIp, reader)
  }

  private async resendCode (user: User, kind: 'phone' | 'step_up_phone', clientIp: string | null, reader?: Translator): Promise<PendingEnrollment> {
    const current = await this.pending.findPhone(user.id, kind)
    if (current === undefined || current.phone === null) throw new DomainError('nothing_pending', 'There is no code to resend. Start again.', { variant: 'resend' })
    return this.sendCode(user, kind, current.phone, clientIp, reader, current)
  }

  /** Adds the phone as a method once its code is proven. */
  async finish (user: User, codeInput: string, context: ChangeContext): Promise<AuthMethod> {
    this.guard.assertMayAdd(user, await this.methods.countFor(user.id), context)
    const pending = await this.checkCode(user, 'phone', codeInput)
    const method = await this.methods.addPhone(user.id, `Mobile ${maskPhone(pending.phone!)}`, pending.phone!)
    await this.lifecycle.added(user, method, context)
    return method
  }

  /**
   * Whether the code waiting for the phone setup is locked (too many wrong codes, so no code can succeed), and from
   * when a new code can be asked for, so the page can stop offering a code box and say when to start again.
   */
  async setupLock (user: User): Promise<{ locked: false } | { locked: true, newCodeAt: Date }> {
    const pending = await this.pending.findPhone(user.id, 'phone')
    if (pending === undefined || pending.codeHash === null || pending.attempts < PHONE_RULES.maxAttempts) return { locked: false }
    const sentAt = (pending.sentAt ?? this.clock.now()).getTime()
    const now = this.clock.now()
    // The resend wait, or (an upper bound) the hour after the last text when the hourly sending limit is reached.
    const hourFull = await this.pending.smsCountSince(user.id, new Date(now.getTime() - 3_600_000)) >= PHONE_RULES.maxSendsPerHour
    const newCodeAt = Math.max(now.getTime(), sentAt + (hourFull ? 3_600_000 : PHONE_RULES.resendAfterMs))
    return { locked: true, newCodeAt: new Date(newCodeAt) }
  }

  /** Step-up with an enrolled phone: send a code to it. */
  async beginStepUp (user: User, methodId: string, reader?: Translator): Promise<PendingEnrollment> {
    const method = await this.methods.findFor(user.id, methodId)
    if (method?.kind !== 'phone' || method.phone === null) throw new DomainError('method_not_found', 'That sign-in method does not exist.')
    return this.sendCode(user, 'step_up_phone', method.phone, null, reader)
  }

  async finishStepUp (user: User, codeInput: string): Promise<AuthMethod> {
    const pending = await this.checkCode(user, 'step_up_phone', codeInput)
    const method = (await this.methods.listFor(user.id)).find((m) => m.kind === 'phone' && m.phone === pending.phone)
    if (method === undefined) throw new DomainError('method_not_found', 'That phone is no longer one of your sign-in methods.', { variant: 'phone' })
    await this.methods.markUsed(method.id, this.clock.now())
    return method
  }

  private async sendCode (user: User, kind: 'phone' | 'step_up_phone', phone: string, clientIp: string | null, reader?: Translator, current?: PendingEnrollment): Promise<PendingEnrollment> {
    const now = this.clock.now()
    const previous = current ?? await this.pending.findPhone(user.id, kind)
    if (previous?.sentAt != null && now.getTime() - previous.sentAt.getTime() < PHONE_RULES.resendAfterMs) {
      const seconds = Math.ceil((PHONE_RULES.resendAfterMs - (now.getTime() - previous.sentAt.getTime())) / 1000)
      throw new DomainError('resend_too_soon', `A code was just sent. You can ask for another in ${seconds} seconds.`, { retryAfterSeconds: seconds })
    }
    if (await this.pending.smsCountSince(user.id, new Date(now.getTime() - 3_600_000)) >= PHONE_RULES.maxSendsPerHour) {
      await this.audit.append({ action: 'phone.send_limit', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: {} })
      throw new DomainError('too_many_codes', 'Too many codes were sent in the last hour. Wait a while before asking for another, or use another method.', { variant: 'user_limit' })
    }
    await this.smsLimits.admit(user, phone, clientIp, kind, kind === 'phone')
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0')
    const expiresAt = new Date(now.getTime() + PHONE_RULES.codeLifetimeMs)
    const pending = current !== undefined
      ? (await this.pending.resendCode(current.id, this.hasher.hash(code, `sms:${current.id}`), now, expiresAt), { ...current, sentAt: now, expiresAt, attempts: 0 })
      : await this.pending.startPhone(user.id, kind, phone, (id) => this.hasher.hash(code, `sms:${id}`), now, expiresAt)
    // Counted before sending: a provider that fails after charging still counts toward the hourly limit.
    await this.pending.recordSms(user.id, phone, now)
    try {
      const words = reader ?? this.settings.localiser.for({ locale: user.locale, timeZone: user.timeZone })
      await this.sms.send(phone, words.t('sms.verification_code', { code, organisation: this.settings.organisation, minutes: PHONE_RULES.codeLifetimeMs / 60_000 }))
    } catch (err) {
      // A code that never arrived must not be left waiting: it would make "try again" wait out the resend timer.
      await this.pending.claim(pending.id)
      await this.audit.append({ action: 'phone.send_failed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { kind, phone: maskPhone(phone), reason: err instanceof Error ? err.message.slice(0, 200) : String(err) } })
      throw new DomainError('sms_failed', 'We could not send a text message right now. Try again in a few minutes, or use another method.')
    }
    await this.audit.append({ action: 'phone.code_sent', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { kind, phone: maskPhone(phone) } })
    return pending
  }

  private async checkCode (user: User, kind: 'phone' | 'step_up_phone', codeInput: string): Promise<PendingEnrollment> {
    const pending = await this.pending.findPhone(user.id, kind)
    if (pending === undefined || pending.codeHash === null) throw new DomainError('nothing_pending', 'There is no code waiting to be checked. Ask for a new code.', { variant: 'none' })
    if (pending.expiresAt <= this.clock.now()) throw new DomainError('code_expired', 'This code has expired. Ask for a new one.')
    if (pending.attempts >= PHONE_RULES.maxAttempts) throw new DomainError('too_many_attempts', 'Too many wrong codes. Ask for a new code.')
    const code = normaliseCode(codeInput)
    if (!/^\d{6}$/.test(code) || !this.hasher.matches(code, `sms:${pending.id}`, pending.codeHash)) {
      const attempts = await this.pending.addAttempt(pending.id)
      await this.audit.append({ action: 'phone.code_rejected', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { kind, attempts } })
      if (attempts >= PHONE_RULES.maxAttempts) throw new DomainError('too_many_attempts', 'Too many wrong codes. Ask for a new code.')
      throw new DomainError('wrong_code', `That code is not right. You have ${PHONE_RULES.maxAttempts - attempts} more ${PHONE_RULES.maxAttempts - attempts === 1 ? 'try' : 'tries'}.`, { variant: 'phone', triesLeft: PHONE_RULES.maxAttempts - attempts })
    }
    // Claimed once: a code cannot complete two enrollments even when sent twice at the same moment.
    if (!await this.pending.claim(pending.id)) throw new DomainError('nothing_pending', 'This code was already used. Ask for a new code.', { variant: 'used' })
    return pending
  }
}
