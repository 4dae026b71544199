import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js'
import { DomainError } from '../../domain/errors.ts'
import { parsePhone } from '../../domain/phone.ts'
import { ProviderError } from '../../domain/provider.ts'
import { runBatch } from './batch.ts'
import { mayHaveHappened, type GraphApi } from './graph-client.ts'

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
  /** The mobile method's number before: E.164, or as Entra holds it when it cannot be read (null when there was none). */
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

  /**
   * The user's mobile method, or null when there is none. Whether one exists decides create or update, not whether
   * its number can be read: Graph keeps one phone per type (contracts 1.6) whatever its format.
   */
  async mobileMethod (externalId: string): Promise<PhoneMethod | null> {
    const { value } = await this.graph.get<{ value: PhoneMethod[] }>(phoneMethodsPath(externalId))
    return value.find((m) => m.phoneType === 'mobile') ?? null
  }

  /** The user's mobile MFA number (E.164), or null (none, or a number that cannot be read). */
  async mobilePhone (externalId: string): Promise<string | null> {
    return e164Of((await this.mobileMethod(externalId))?.phoneNumber)
  }

  /**
   * Creates the mobile method with `e164` (a number the portal has just verified by code); a no-op when it already
   * holds that number. Another number is replaced only with `replaceExisting` (the user proved an existing method:
   * EnrollmentGuard.assertMayReplaceAtDirectory); otherwise nothing is written and the answer is 'conflict'. A
   * create racing another one fails at Graph (one mobile method per user), so it never overwrites either.
   */
  async setMobilePhone (externalId: string, e164: string, options: { replaceExisting: boolean }): Promise<Exclude<PhoneAction, 'invalid'>> {
    const phoneNumber = toGraphPhone(e164)
    const wanted = e164Of(e164)
    const existing = await this.mobileMethod(externalId)
    if (existing !== null && e164Of(existing.phoneNumber) === wanted) return 'unchanged'
    if (existing === null) {
      try {
        await this.graph.post(phoneMethodsPath(externalId), { phoneNumber, phoneType: 'mobile' })
      } catch (err) {
        // The create may have happened with its answer lost: the number read back says whether it did.
        if (!mayHaveHappened(err) || await this.mobilePhone(externalId) !== wanted) throw err
      }
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
        if (u.phone === null || u.phone === undefined || u.phone.trim() === '') throw new DomainError('invalid_phone', 'No phone number in the directory.', { variant: 'directory_empty' })
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
      const mobile = ((o.body as { value?: PhoneMethod[] }).value ?? []).find((m) => m.phoneType === 'mobile')
      if (mobile !== undefined) {
        // A mobile method exists, readable or not: the same number is unchanged, any other one a conflict.
        plan.previous = e164Of(mobile.phoneNumber) ?? mobile.phoneNumber
        if (plan.previous !== plan.phone) plan.action = 'conflict'
        return
      }
      plan.action = 'create'
      writes.push(plan)
    })
    if (options.dryRun || writes.length === 0) return plans
    const outcomes = await runBatch(this.graph, writes.map((p) => (
      { method: 'POST' as const, url: phoneMethodsPath(p.externalId), body: { phoneNumber: toGraphPhone(p.phone!), phoneType: 'mobile' } }
    )), { concurrency: this.concurrency })
    // Creates whose answer was lost are not sent again (one mobile per user): their numbers are read back instead.
    const unsure = writes.filter((_, k) => { const o = outcomes[k]; return !o.ok && o.maybeApplied })
    const readBack = await runBatch(this.graph, unsure.map((p) => ({ method: 'GET' as const, url: phoneMethodsPath(p.externalId) })), { concurrency: this.concurrency })
    const landed = new Set(unsure.filter((p, k) => {
      const o = readBack[k]
      return o.ok && e164Of(((o.body as { value?: PhoneMethod[] }).value ?? []).find((m) => m.phoneType === 'mobile')?.phoneNumber) === p.phone
    }))
    outcomes.forEach((o, k) => {
      if (o.ok || landed.has(writes[k])) writes[k].applied = true
      else writes[k].reason = o.error.message
    })
    return plans
  }
}
