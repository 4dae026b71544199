/**
 * Which of a person's methods protect which sign-in (DESIGN.md "What counts as enrolled"). A directory user
 * (Microsoft Entra ID, AWS IAM) signs in at the directory: only methods registered there protect that sign-in, so
 * only they count toward `enrolled`, the campaign's method policy, the dashboard and the compliance evidence.
 * Methods held in the portal protect the portal itself (its sign-in and step-up) and nothing else. For local
 * users the portal is where they sign in, so the portal's methods are the truth. One rule, used everywhere.
 */
import { assessMethods, enrollmentStatus, type EnrollmentStatus, type MethodPolicy } from './methods.ts'

/** A person's methods, by where they are held. */
export interface MethodHoldings {
  provider: string
  /** Kinds of the methods held in the portal itself (auth_methods). */
  portalMethods: readonly string[]
  /** Kinds the user's directory reports (synced). */
  providerMethods: readonly string[]
}

/** Providers whose users sign in to the portal itself; for everyone else, the directory is where they sign in. */
const PORTAL_SIGN_IN: ReadonlySet<string> = new Set(['local'])

/** The directories' names as people know them, for "protects your Microsoft sign-in". */
const DIRECTORY_NAMES: Readonly<Record<string, string>> = { entra: 'Microsoft', aws: 'AWS' }

/** Whether the portal's own methods protect this user's sign-in (local users), or only the portal (directory users). */
export function portalMethodsCount (provider: string): boolean {
  return PORTAL_SIGN_IN.has(provider)
}

/** The providers for which portal methods count, for queries that count inside the database. */
export function providersWherePortalMethodsCount (): string[] {
  return [...PORTAL_SIGN_IN]
}

/** The method kinds that count toward this user's enrollment, sorted, each once. */
export function countingMethods (user: MethodHoldings): string[] {
  const kinds = portalMethodsCount(user.provider) ? [...user.portalMethods, ...user.providerMethods] : [...user.providerMethods]
  return [...new Set(kinds)].sort()
}

/** The directory a user signs in at, as people name it ('Microsoft', 'AWS'), or null for the portal's own users. */
export function directoryName (provider: string): string | null {
  if (portalMethodsCount(provider)) return null
  return DIRECTORY_NAMES[provider] ?? provider
}

/**
 * What a method protects, in the words the pages use: methods held in the portal by a directory user "protect this
 * portal only"; those registered at the directory "protect your Microsoft sign-in". Null for local users, whose
 * portal methods simply protect their sign-in.
 */
export function protectsLabel (provider: string, where: 'portal' | 'directory', whose: 'your' | 'their' = 'your'): string | null {
  const name = directoryName(provider)
  if (name === null) return null
  return where === 'portal' ? 'protects this portal only' : `protects ${whose} ${name} sign-in`
}

/** Whether a kind a directory reports is a second factor at all (an email address, for one, is not). */
export function isSecondFactor (kind: string): boolean {
  return assessMethods(false, [kind], { smsPolicy: 'counts', privilegedMethods: 'any' }).enrolled
}

/** The compliance export's plain answer to "is this person's sign-in protected, and where?". */
export function protectionWords (provider: string, enrolled: boolean): string {
  if (portalMethodsCount(provider)) return enrolled ? 'protected in the portal' : 'not protected'
  return enrolled ? 'protected at the directory' : 'not protected at the directory'
}

/**
 * Where the user stands for the home page, in words: the campaign's policy over the methods that count where the
 * user signs in. A directory user with only portal methods is told plainly that those protect the portal only.
 */
export function signInStatus (user: { privileged: boolean, provider: string, providerMethods: readonly string[] }, portalKinds: readonly string[], policy: MethodPolicy): EnrollmentStatus {
  const status = enrollmentStatus(user, countingMethods({ provider: user.provider, portalMethods: portalKinds, providerMethods: user.providerMethods }), policy)
  const name = directoryName(user.provider)
  if (name === null) return status
  if (status.enrolled) return { enrolled: true, summary: `${status.summary} It is registered for your ${name} sign-in.` }
  const need = user.privileged && policy.privilegedMethods === 'phishing_resistant'
    ? 'a passkey or security key (administrators and other privileged accounts need one)'
    : 'a second way to prove it\'s you'
  const portalOnly = portalKinds.length > 0 ? ' What you set up in this portal protects this portal only.' : ''
  return { enrolled: false, summary: `Nothing protects your ${name} sign-in yet: add ${need} below.${portalOnly}` }
}
