import type { User } from './users.ts'
import type { Words } from './i18n.ts'

export type MethodKind = 'passkey' | 'totp' | 'phone'

/** A second factor as the rest of the portal sees it (no key material). */
export interface AuthMethod {
  id: string
  userId: string
  kind: MethodKind
  name: string
  createdAt: Date
  lastUsedAt: Date | null
  phone: string | null
  aaguid: string | null
}

export interface PasskeyCredential {
  methodId: string
  userId: string
  credentialId: string
  publicKey: Uint8Array
  counter: number
  transports: string[]
}

export interface NewPasskey {
  name: string
  credentialId: string
  publicKey: Uint8Array
  counter: number
  transports: string[]
  aaguid: string
  backedUp: boolean
}

/** Storage port for methods. Every lookup by method id is scoped to its owner, so ids cannot be guessed across users. */
export interface MethodStore {
  listFor(userId: string): Promise<AuthMethod[]>
  findFor(userId: string, methodId: string): Promise<AuthMethod | undefined>
  countFor(userId: string): Promise<number>
  addPasskey(userId: string, passkey: NewPasskey): Promise<AuthMethod>
  /** Seals the secret at rest, bound to the new row. */
  addTotp(userId: string, name: string, secretBase32: string, firstUsedStep: number): Promise<AuthMethod>
  addPhone(userId: string, name: string, phone: string): Promise<AuthMethod>
  rename(userId: string, methodId: string, name: string): Promise<boolean>
  remove(userId: string, methodId: string): Promise<AuthMethod | undefined>
  passkeyByCredentialId(credentialId: string): Promise<PasskeyCredential | undefined>
  passkeysFor(userId: string): Promise<PasskeyCredential[]>
  /** Compare-and-swap on the signature counter; false when another use got there first. */
  recordPasskeyUse(methodId: string, previousCounter: number, newCounter: number, at: Date): Promise<boolean>
  totpSecret(userId: string, methodId: string): Promise<string | undefined>
  /** Claims a time step for a TOTP method; false when that step (or a later one) was already used. */
  claimTotpStep(methodId: string, step: number, at: Date): Promise<boolean>
  markUsed(methodId: string, at: Date): Promise<void>
  /** Seals every secret again under the current key (key rotation); how many rows. */
  resealAll(): Promise<number>
}

/**
 * Which methods qualify (DESIGN.md "Qualifying methods"), per campaign: text messages may count, count as weak,
 * or not count; privileged users may need a phishing-resistant method; a campaign may ask for a second method (or
 * recovery codes) before anyone counts as enrolled, and may retire text messages from a date on (the SMS sunset).
 */
export interface MethodPolicy {
  smsPolicy: 'counts' | 'weak' | 'excluded'
  privilegedMethods: 'phishing_resistant' | 'any'
  /** Absent: 'one'. */
  methodsRequired?: MethodsRequired
  /** From this moment on, text messages count as `smsAfterSunset` instead of `smsPolicy` (absent or null: never). */
  smsSunsetAt?: Date | null
  smsAfterSunset?: 'weak' | 'excluded'
}

/**
 * How many methods before a user counts as enrolled. Methods are counted by kind (passkey, authenticator app,
 * phone, …): directories report kinds, not devices, so the same rule holds for every provider. 'one_plus_recovery'
 * is one method and a set of unused recovery codes for the portal's own accounts, which alone hold recovery codes;
 * a directory's users recover at their directory, so for them it means two methods registered there.
 */
export type MethodsRequired = 'one' | 'two' | 'one_plus_recovery'
export const METHODS_REQUIRED: readonly MethodsRequired[] = ['one', 'two', 'one_plus_recovery']

export const DEFAULT_METHOD_POLICY: MethodPolicy = { smsPolicy: 'counts', privilegedMethods: 'phishing_resistant' }

/** What `countingMethods` (protection.ts) adds for a portal account holding unused recovery codes; never a method itself. */
export const RECOVERY_CODES_KIND = 'recovery_codes'

/** Passkeys and FIDO2 security keys, wherever they are registered (portal or provider). */
const PHISHING_RESISTANT: ReadonlySet<string> = new Set(['passkey'])
/** Kinds that prove possession; anything else a provider reports (email, password, …) never counts. */
const STRONG: ReadonlySet<string> = new Set(['passkey', 'totp', 'hardware_totp', 'authenticator'])

export interface MethodAssessment {
  /** Meets the policy: enough qualifying methods (and the phishing-resistant one privileged users may need). */
  enrolled: boolean
  /** Enrolled only through a text-message phone while the policy calls that weak. */
  weak: boolean
  phishingResistant: boolean
  /** Qualifying methods held (by kind) and how many the policy asks for. */
  held: number
  required: 1 | 2
  /** Recovery codes stand in for the second method (local users under 'one_plus_recovery'). */
  recoveryCodesCount: boolean
  /** Holds recovery codes (local users only). */
  recoveryCodes: boolean
  /** Has what a single method would satisfy, but the campaign asks for a second (or recovery codes): nudge them. */
  needsSecond: boolean
  /** How text messages count at that moment (the SMS sunset may have changed it). */
  smsPolicy: MethodPolicy['smsPolicy']
}

/** How text messages count at `at`: the campaign's SMS policy, or what it becomes once the SMS sunset has come. */
export function smsPolicyAt (policy: MethodPolicy, at: Date): MethodPolicy['smsPolicy'] {
  if (policy.smsSunsetAt != null && at >= policy.smsSunsetAt) return policy.smsAfterSunset ?? 'excluded'
  return policy.smsPolicy
}

/**
 * Does a user holding these method kinds count as enrolled under the policy at `at`? Pure, shared by the engine,
 * the pages and the compliance export: the one rule for what counts.
 */
export function assessMethods (privileged: boolean, kinds: readonly string[], policy: MethodPolicy, at: Date): MethodAssessment {
  const smsPolicy = smsPolicyAt(policy, at)
  const phishingResistant = kinds.some((k) => PHISHING_RESISTANT.has(k))
  const strong = kinds.filter((k) => STRONG.has(k))
  const sms = kinds.includes('phone') && smsPolicy !== 'excluded'
  const held = new Set(strong).size + (sms ? 1 : 0)
  const recoveryCodes = kinds.includes(RECOVERY_CODES_KIND)
  const required = policy.methodsRequired === 'two' || policy.methodsRequired === 'one_plus_recovery' ? 2 : 1
  const recoveryCodesCount = policy.methodsRequired === 'one_plus_recovery' && recoveryCodes
  // Recovery codes are a backup for the one method, never a method of their own.
  const backed = held >= 1 && held + (recoveryCodesCount ? 1 : 0) >= required
  const firstOk = privileged && policy.privilegedMethods === 'phishing_resistant' ? phishingResistant : held >= 1
  const enrolled = firstOk && backed
  return {
    enrolled,
    weak: enrolled && strong.length === 0 && sms && smsPolicy === 'weak',
    phishingResistant,
    held,
    required,
    recoveryCodesCount,
    recoveryCodes,
    needsSecond: firstOk && !backed,
    smsPolicy
  }
}

/** Has MFA at all: a qualifying method, whether or not the second one the campaign may ask for is there too. */
export function holdsQualifyingMethod (assessment: MethodAssessment): boolean {
  return assessment.enrolled || assessment.needsSecond
}

/**
 * Would this user, who meets the policy just before the campaign's SMS sunset, no longer meet it from the sunset on?
 * (Those who relied on text messages: they get a new deadline with its own grace period, deadlines.ts.)
 */
export function dropsAtSmsSunset (privileged: boolean, kinds: readonly string[], policy: MethodPolicy): boolean {
  if (policy.smsSunsetAt == null) return false
  const before = assessMethods(privileged, kinds, policy, new Date(policy.smsSunsetAt.getTime() - 1))
  return before.enrolled && !assessMethods(privileged, kinds, policy, policy.smsSunsetAt).enrolled
}

export interface EnrollmentStatus {
  enrolled: boolean
  /** Holds one method where the campaign asks for two (or for recovery codes as well): the page nudges. */
  needsSecond: boolean
  /** What the second thing may be: another method, or (local users) recovery codes as well. */
  second: 'method' | 'method_or_recovery_codes' | null
  /** A few plain sentences for the home page, as catalogue keys (`status.*`) and values, shown one after the other. */
  summary: Words[]
}

/** Does this user count as enrolled under the policy at `at`, and how do we say so in plain words? */
export function enrollmentStatus (user: Pick<User, 'privileged'>, kinds: readonly string[], policy: MethodPolicy, at: Date, mayHoldRecoveryCodes = false): EnrollmentStatus {
  const assessment = assessMethods(user.privileged, kinds, policy, at)
  if (assessment.needsSecond) {
    const codes = policy.methodsRequired === 'one_plus_recovery' && mayHoldRecoveryCodes
    return {
      enrolled: false,
      needsSecond: true,
      second: codes ? 'method_or_recovery_codes' : 'method',
      summary: [{ key: codes ? 'status.second_codes' : 'status.second_method' }]
    }
  }
  if (user.privileged && policy.privilegedMethods === 'phishing_resistant') {
    return assessment.enrolled ? status(true, 'status.privileged_has_passkey') : status(false, 'status.privileged_needs_passkey')
  }
  if (assessment.weak) return status(true, 'status.weak_sms')
  if (assessment.enrolled) return status(true, 'status.enrolled')
  if (kinds.some((k) => k !== RECOVERY_CODES_KIND)) {
    return policy.smsSunsetAt != null && at >= policy.smsSunsetAt
      ? status(false, 'status.sms_no_longer_counts', { since: policy.smsSunsetAt })
      : status(false, 'status.sms_alone')
  }
  return status(false, 'status.none')
}

/** A status that needs no second method: whether it counts, and the one sentence that says so. */
function status (enrolled: boolean, key: string, values?: Words['values']): EnrollmentStatus {
  return { enrolled, needsSecond: false, second: null, summary: [{ key, values }] }
}

export const METHOD_NAME_MAX = 60

/** A user-typed method name: trimmed, single line, 1–60 characters. */
export function cleanMethodName (name: string): string | undefined {
  const cleaned = name.replace(/\s+/g, ' ').trim()
  return cleaned.length >= 1 && cleaned.length <= METHOD_NAME_MAX ? cleaned : undefined
}
