import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js'
import { DomainError } from '../../domain/errors.ts'
import { parsePhone } from '../../domain/phone.ts'
import { ProviderError } from '../../domain/provider.ts'
import { runBatch } from './batch.ts'
import type { GraphApi } from './graph-client.ts'

/** Phone method ids are fixed per phone type (contracts 1.6). */
export const MOBILE_PHONE_METHOD_ID = '3179e48a-750b-4051-897c-87b9720928f7'

/** Graph's phone format, `+{cc} {national number}` (contracts 1.6); anything else is rejected by Graph. */
export function toGraphPhone (e164: string): string {
  const parsed = parsePhoneNumberFromString(e164)
  if (parsed === undefined) throw new ProviderError(`"${e164}" is not an E.164 phone number`, false, null, 'invalid_phone')
  return `+${parsed.countryCallingCode} ${parsed.nationalNumber}`
}

/** E.164 of a number as Graph or a directory stores it, or null when it cannot be read. */
function e164Of (value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null
  return parsePhoneNumberFromString(value)?.number ?? null
}

/** 'conflict': the user already has another mobile number in Entra, and it was left as it is. */
export type PhoneAction = 'create' | 'update' | 'unchanged' | 'conflict' | 'invalid'

/** One user's line in a pre-population report. */
export interface PhonePlan {
  externalId: string
  /** Pre-population never updates: another number already there is a 'conflict'. */
  action: Exclude<PhoneAction, 'update'>
  /** The number to hold afterwards, E.164 (null for invalid). */
  phone: string | null
  /** The mobile method's number before, E.164 (null when there was none). */
  previous: string | null
  /** Why the directory's value cannot be used (invalid), or why a planned write failed. */
  reason?: string
  /** Whether the change was written (false in a dry run, for unchanged/conflict/invalid lines, and on failure). */
  applied: boolean
}

interface PhoneMethod { id: string, phoneNumber: string, phoneType: string }

function phoneMethodsPath (id: string): string {
  return `/users/${encodeURIComponent(id)}/authentication/phoneMethods`
}

/** The `mobile` phone method: the number Entra texts and calls for MFA. */
export class PhoneMethods {
  constructor (private readonly graph: GraphApi, private readonly concurrency: number) {}

  /** The user's mobile MFA number (E.164), or null. */
  async mobilePhone (externalId: string): Promise<string | null> {
    const { value } = await this.graph.get<{ value: PhoneMethod[] }>(phoneMethodsPath(externalId))
    return e164Of(value.find((m) => m.phoneType === 'mobile')?.phoneNumber)
  }

  /**
   * Creates the mobile method with `e164` (a number the portal has just verified by code); a no-op when it already
   * holds that number. Another number is replaced only with `replaceExisting` (the user proved an existing method:
   * EnrollmentGuard.assertMayReplaceAtDirectory); otherwise nothing is written and the answer is 'conflict'. A
   * create racing another one fails at Graph (one mobile method per user), so it never overwrites either.
   */
  async setMobilePhone (externalId: string, e164: string, options: { replaceExisting: boolean }): Promise<Exclude<PhoneAction, 'invalid'>> {
    const phoneNumber = toGraphPhone(e164)
    const previous = await this.mobilePhone(externalId)
    if (previous === e164Of(e164)) return 'unchanged'
    if (previous === null) {
      await this.graph.post(phoneMethodsPath(externalId), { phoneNumber, phoneType: 'mobile' })
      return 'create'
    }
    if (!options.replaceExisting) return 'conflict'
    await this.graph.patch(`${phoneMethodsPath(externalId)}/${MOBILE_PHONE_METHOD_ID}`, { phoneNumber, phoneType: 'mobile' })
    return 'update'
  }

  /**
   * Plans (dryRun) or creates each user's mobile method from the directory's number. Pre-population only ever
   * creates: a user who already has another mobile number is reported as a 'conflict' for a person to resolve,
   * never replaced (a feed must not be able to redirect someone's MFA texts). Numbers are normalised the way the
   * portal normalises typed ones; unusable ones are reported as invalid and never pushed. Reads and writes go 20
   * users per $batch.
   */
  async prepopulate (users: ReadonlyArray<{ externalId: string, phone?: string | null }>, options: { dryRun: boolean, defaultRegion: CountryCode }): Promise<PhonePlan[]> {
    const plans: PhonePlan[] = users.map((u) => {
      try {
        if (u.phone === null || u.phone === undefined || u.phone.trim() === '') throw new DomainError('invalid_phone', 'No phone number in the directory.')
        return { externalId: u.externalId, action: 'unchanged', phone: parsePhone(u.phone, options.defaultRegion), previous: null, applied: false }
      } catch (err) {
        if (!(err instanceof DomainError)) throw err
        return { externalId: u.externalId, action: 'invalid', phone: null, previous: null, reason: err.message, applied: false }
      }
    })
    const valid = plans.filter((p) => p.action !== 'invalid')
    const reads = await runBatch(this.graph, valid.map((p) => ({ method: 'GET' as const, url: phoneMethodsPath(p.externalId) })), { concurrency: this.concurrency })
    const writes: PhonePlan[] = []
    reads.forEach((o, k) => {
      const plan = valid[k]
      if (!o.ok) {
        plan.reason = o.error.message
        return
      }
      plan.previous = e164Of(((o.body as { value?: PhoneMethod[] }).value ?? []).find((m) => m.phoneType === 'mobile')?.phoneNumber)
      if (plan.previous === plan.phone) return
      if (plan.previous !== null) {
        plan.action = 'conflict'
        return
      }
      plan.action = 'create'
      writes.push(plan)
    })
    if (options.dryRun || writes.length === 0) return plans
    const outcomes = await runBatch(this.graph, writes.map((p) => (
      { method: 'POST' as const, url: phoneMethodsPath(p.externalId), body: { phoneNumber: toGraphPhone(p.phone!), phoneType: 'mobile' } }
    )), { concurrency: this.concurrency })
    outcomes.forEach((o, k) => {
      if (o.ok) writes[k].applied = true
      else writes[k].reason = o.error.message
    })
    return plans
  }
}
