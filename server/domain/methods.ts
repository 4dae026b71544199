import type { User } from './users.ts'

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
  listFor(userId: string): AuthMethod[]
  findFor(userId: string, methodId: string): AuthMethod | undefined
  countFor(userId: string): number
  addPasskey(userId: string, passkey: NewPasskey): AuthMethod
  /** Seals the secret at rest, bound to the new row. */
  addTotp(userId: string, name: string, secretBase32: string, firstUsedStep: number): AuthMethod
  addPhone(userId: string, name: string, phone: string): AuthMethod
  rename(userId: string, methodId: string, name: string): boolean
  remove(userId: string, methodId: string): AuthMethod | undefined
  passkeyByCredentialId(credentialId: string): PasskeyCredential | undefined
  passkeysFor(userId: string): PasskeyCredential[]
  /** Compare-and-swap on the signature counter; false when another use got there first. */
  recordPasskeyUse(methodId: string, previousCounter: number, newCounter: number, at: Date): boolean
  totpSecret(userId: string, methodId: string): string | undefined
  /** Claims a time step for a TOTP method; false when that step (or a later one) was already used. */
  claimTotpStep(methodId: string, step: number, at: Date): boolean
  markUsed(methodId: string, at: Date): void
}

/**
 * Which methods qualify (DESIGN.md "Qualifying methods"), per campaign: text messages may count, count as weak,
 * or not count; privileged users may need a phishing-resistant method.
 */
export interface MethodPolicy {
  smsPolicy: 'counts' | 'weak' | 'excluded'
  privilegedMethods: 'phishing_resistant' | 'any'
}

export const DEFAULT_METHOD_POLICY: MethodPolicy = { smsPolicy: 'counts', privilegedMethods: 'phishing_resistant' }

/** Passkeys and FIDO2 security keys, wherever they are registered (portal or provider). */
const PHISHING_RESISTANT: ReadonlySet<string> = new Set(['passkey'])
/** Kinds that prove possession; anything else a provider reports (email, password, …) never counts. */
const STRONG: ReadonlySet<string> = new Set(['passkey', 'totp', 'hardware_totp', 'authenticator'])

export interface MethodAssessment {
  enrolled: boolean
  /** Enrolled only through a text-message phone while the policy calls that weak. */
  weak: boolean
  phishingResistant: boolean
}

/** Does a user holding these method kinds count as enrolled under the policy? Pure, shared by the engine and the pages. */
export function assessMethods (privileged: boolean, kinds: readonly string[], policy: MethodPolicy): MethodAssessment {
  const phishingResistant = kinds.some((k) => PHISHING_RESISTANT.has(k))
  if (privileged && policy.privilegedMethods === 'phishing_resistant') return { enrolled: phishingResistant, weak: false, phishingResistant }
  const strong = kinds.some((k) => STRONG.has(k))
  const sms = kinds.includes('phone') && policy.smsPolicy !== 'excluded'
  return { enrolled: strong || sms, weak: !strong && sms && policy.smsPolicy === 'weak', phishingResistant }
}

export interface EnrollmentStatus {
  enrolled: boolean
  /** One plain sentence for the home page. */
  summary: string
}

/** Does this user count as enrolled under the policy, and how do we say so in plain words? */
export function enrollmentStatus (user: Pick<User, 'privileged'>, kinds: readonly string[], policy: MethodPolicy): EnrollmentStatus {
  const assessment = assessMethods(user.privileged, kinds, policy)
  if (user.privileged && policy.privilegedMethods === 'phishing_resistant') {
    return assessment.enrolled
      ? { enrolled: true, summary: 'Your account has a passkey, which administrators and other privileged accounts need.' }
      : { enrolled: false, summary: 'A passkey or security key is required for administrators and other privileged accounts. Add one below.' }
  }
  if (assessment.weak) return { enrolled: true, summary: 'You can prove it\'s you by text message. A passkey or an authenticator app is safer: consider adding one.' }
  if (assessment.enrolled) return { enrolled: true, summary: 'You have a second way to prove it\'s you.' }
  if (kinds.length > 0) {
    return { enrolled: false, summary: 'Text-message codes do not count on their own here. Add a passkey or an authenticator app.' }
  }
  return { enrolled: false, summary: 'You have not set up a second sign-in method yet. Add a passkey, an authenticator app or a phone.' }
}

export const METHOD_NAME_MAX = 60

/** A user-typed method name: trimmed, single line, 1–60 characters. */
export function cleanMethodName (name: string): string | undefined {
  const cleaned = name.replace(/\s+/g, ' ').trim()
  return cleaned.length >= 1 && cleaned.length <= METHOD_NAME_MAX ? cleaned : undefined
}
