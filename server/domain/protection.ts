/**
 * Which of a person's methods protect which sign-in (DESIGN.md "What counts as enrolled"). A directory user
 * (Microsoft Entra ID, AWS IAM) signs in at the directory: only methods registered there protect that sign-in, so
 * only they count toward `enrolled`, the campaign's method policy, the dashboard and the compliance evidence.
 * Methods held in the portal protect the portal itself (its sign-in and step-up) and nothing else. For local
 * users the portal is where they sign in, so the portal's methods are the truth. One rule, used everywhere.
 */
import { assessMethods, enrollmentStatus, holdsQualifyingMethod, RECOVERY_CODES_KIND, type EnrollmentStatus, type MethodPolicy } from './methods.ts'
import type { Words } from './i18n.ts'

/** A person's methods, by where they are held. */
export interface MethodHoldings {
  provider: string
  /** Kinds of the methods held in the portal itself (auth_methods). */
  portalMethods: readonly string[]
  /** Kinds the user's directory reports (synced). */
  providerMethods: readonly string[]
  /** Unused recovery codes the user holds (portal accounts only; absent: none). */
  recoveryCodes?: number
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

/**
 * The method kinds that count toward this user's enrollment, sorted, each once; with 'recovery_codes' when a portal
 * account holds unused recovery codes (a backup the policy may ask for, never a method: methods.ts assessMethods).
 */
export function countingMethods (user: MethodHoldings): string[] {
  const portal = portalMethodsCount(user.provider)
  const kinds = portal ? [...user.portalMethods, ...user.providerMethods] : [...user.providerMethods]
  if (portal && (user.recoveryCodes ?? 0) > 0) kinds.push(RECOVERY_CODES_KIND)
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
  return assessMethods(false, [kind], { smsPolicy: 'counts', privilegedMethods: 'any' }, new Date(0)).enrolled
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
export function signInStatus (
  user: { privileged: boolean, provider: string, providerMethods: readonly string[] },
  portalKinds: readonly string[],
  policy: MethodPolicy,
  at: Date,
  recoveryCodes = 0
): EnrollmentStatus {
  const kinds = countingMethods({ provider: user.provider, portalMethods: portalKinds, providerMethods: user.providerMethods, recoveryCodes })
  const status = enrollmentStatus(user, kinds, policy, at, portalMethodsCount(user.provider))
  const name = directoryName(user.provider)
  if (name === null) return status
  const directory = { directory: name }
  if (status.enrolled) return { ...status, summary: [...status.summary, { key: 'status.directory_registered', values: directory }] }
  if (status.needsSecond) return { ...status, summary: [...status.summary, { key: 'status.directory_only_registered_count', values: directory }] }
  // A phone registered at the directory that no longer counts (the SMS policy or its sunset): say so, not "nothing".
  if (kinds.includes('phone')) return { ...status, summary: [...status.summary, { key: 'status.directory_must_register', values: directory }] }
  const need = user.privileged && policy.privilegedMethods === 'phishing_resistant' ? 'passkey' : 'any'
  const summary: Words[] = [{ key: 'status.directory_nothing', values: { ...directory, need } }]
  if (portalKinds.length > 0) summary.push({ key: 'status.directory_portal_only', values: directory })
  return { enrolled: false, needsSecond: false, second: null, summary }
}

/**
 * Why a kind of method would not count for this user, if it would not: 'privileged' (privileged accounts need a
 * phishing-resistant method under the policy), 'sms' (text messages do not count, or no longer), or null when it
 * counts. The home page offers the methods that count first and the others apart, saying why (issue #16 item 6).
 */
export function whyKindDoesNotCount (user: { privileged: boolean }, kind: string, policy: MethodPolicy, at: Date): 'privileged' | 'sms' | null {
  if (holdsQualifyingMethod(assessMethods(user.privileged, [kind], policy, at))) return null
  return user.privileged && policy.privilegedMethods === 'phishing_resistant' ? 'privileged' : 'sms'
}
