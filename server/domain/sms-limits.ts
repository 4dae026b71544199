import { isIPv4, isIPv6 } from 'node:net'
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { DomainError } from './errors.ts'
import type { KeyedHasher } from './keyed-hash.ts'
import { maskPhone } from './phone.ts'
import type { Regulator, ThrottlePolicy } from './regulation.ts'
import type { User } from './users.ts'

/** Config.smsLimits: where codes may be texted, and how many an hour. */
export interface SmsLimits {
  allowedCountries: readonly CountryCode[]
  perNumberPerHour: number
  perAddressPerHour: number
  perHour: number
}

const HOUR_MS = 3_600_000

interface Cap {
  key: string
  policy: ThrottlePolicy
  reason: 'number_limit' | 'address_limit' | 'global_limit'
  message: string
}

/**
 * Toll-fraud (SMS pumping) protection for every text the portal sends, on top of PhoneService's limit per user:
 * a country allow-list (a number's country as libphonenumber resolves it, so +1 numbers of Caribbean countries are
 * not mistaken for US ones), and hourly caps per number, per client address (IPv6 by its /64) and for the whole
 * portal. The caps are counters in the Regulator's store (throttles table); numbers appear there only as keyed hashes.
 */
export class SmsSendLimits {
  private readonly countryNames: string

  constructor (
    private readonly regulator: Regulator,
    private readonly hasher: KeyedHasher,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly limits: SmsLimits
  ) {
    const names = new Intl.DisplayNames(['en'], { type: 'region' })
    this.countryNames = limits.allowedCountries.map((code) => names.of(code) ?? code).join(', ')
  }

  /**
   * Lets one text to `phone` go, and counts it; or refuses it (audited as phone.send_refused) when a cap is reached,
   * or when a number being enrolled (`enrolling`) is not from an allowed country. Step-up codes go to a number the
   * user already proved, vetted when it was added: narrowing the list later must not strand its owner, and only
   * enrollment lets anyone choose where a text goes. `clientIp` is null where no request address applies.
   */
  async admit (user: User, phone: string, clientIp: string | null, kind: string, enrolling: boolean): Promise<void> {
    const country = parsePhoneNumberFromString(phone)?.country ?? null
    if (enrolling && (country === null || !this.limits.allowedCountries.includes(country))) {
      await this.refuse(user, phone, kind, 'country_not_allowed', { country })
      throw new DomainError('sms_country_not_allowed',
        `This portal only texts mobile numbers from: ${this.countryNames}. Use a number from there, or set up an authenticator app or a passkey instead.`, { countries: { regions: this.limits.allowedCountries } })
    }
    const caps = this.capsFor(phone, clientIp)
    // All caps are asked before any is counted: a text refused by one cap must not use up another (or one address
    // hammering away would soon pause texts for everyone).
    for (const cap of caps) {
      const verdict = await this.regulator.check(cap.key)
      if (verdict.locked) {
        await this.refuse(user, phone, kind, cap.reason, {})
        const retryAfterSeconds = Math.max(1, Math.ceil((verdict.until.getTime() - this.clock.now().getTime()) / 1000))
        throw new DomainError('too_many_codes', cap.message, { retryAfterSeconds, variant: cap.reason })
      }
    }
    for (const cap of caps) await this.regulator.fail(cap.key, cap.policy)
  }

  private capsFor (phone: string, clientIp: string | null): Cap[] {
    const policy = (max: number): ThrottlePolicy => ({ maxFailures: max, windowMs: HOUR_MS, lockoutMs: HOUR_MS })
    const caps: Cap[] = [{
      key: `sms:number:${this.hasher.hash(phone, 'sms-number')}`,
      policy: policy(this.limits.perNumberPerHour),
      reason: 'number_limit',
      message: 'Too many codes were sent to this number in the last hour. Wait a while before asking for another, or use another method.'
    }]
    if (clientIp !== null) {
      caps.push({
        key: `sms:address:${addressKey(clientIp)}`,
        policy: policy(this.limits.perAddressPerHour),
        reason: 'address_limit',
        message: 'Too many codes were asked for from your network in the last hour. Wait a while before asking for another, or use another method.'
      })
    }
    caps.push({
      key: 'sms:all',
      policy: policy(this.limits.perHour),
      reason: 'global_limit',
      message: 'Text messages are paused for a while because unusually many were sent. Try again later, or set up an authenticator app or a passkey instead.'
    })
    return caps
  }

  private async refuse (user: User, phone: string, kind: string, reason: string, extra: Record<string, unknown>): Promise<void> {
    await this.audit.append({ action: 'phone.send_refused', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { kind, reason, phone: maskPhone(phone), ...extra } })
  }
}

/**
 * The address a text is counted against: an IPv4 address as it is (also when seen through an IPv6 socket), an
 * IPv6 address by its /64, since one subscriber usually holds a whole /64 and can pick any address in it.
 */
export function addressKey (ip: string): string {
  const mapped = ip.toLowerCase().startsWith('::ffff:') ? ip.slice(7) : ip
  if (isIPv4(mapped)) return mapped
  if (!isIPv6(ip)) return ip
  const [head, tail] = ip.toLowerCase().split('::')
  const groups = (part: string | undefined): string[] => part === undefined || part === '' ? [] : part.split(':')
  const left = groups(head)
  // With "::" the missing groups are zeros; an embedded IPv4 tail (a.b.c.d) fills two groups.
  const right = groups(tail)
  const width = right.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0)
  const full = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - width).fill('0'), ...right]
  return `${full.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`
}
