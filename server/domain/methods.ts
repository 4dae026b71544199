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

export interface EnrollmentPolicy {
  /** Whether a phone (SMS) counts toward being enrolled. */
  smsCounts: boolean
}

export interface EnrollmentStatus {
  enrolled: boolean
  /** One plain sentence for the home page. */
  summary: string
}

const PHISHING_RESISTANT: ReadonlySet<MethodKind> = new Set(['passkey'])

/** Does this user count as enrolled under the policy, and how do we say so in plain words? */
export function enrollmentStatus (user: Pick<User, 'privileged'>, methods: Pick<AuthMethod, 'kind'>[], policy: EnrollmentPolicy): EnrollmentStatus {
  if (user.privileged) {
    return methods.some((m) => PHISHING_RESISTANT.has(m.kind))
      ? { enrolled: true, summary: 'Your account has a passkey, which administrators and other privileged accounts need.' }
      : { enrolled: false, summary: 'A passkey or security key is required for administrators and other privileged accounts. Add one below.' }
  }
  const qualifying = methods.filter((m) => m.kind !== 'phone' || policy.smsCounts)
  if (qualifying.length > 0) return { enrolled: true, summary: 'You have a second way to prove it\'s you.' }
  if (methods.length > 0) {
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
