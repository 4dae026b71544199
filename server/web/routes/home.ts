import type { FastifyPluginAsync } from 'fastify'
import { CALENDAR_CONTENT_TYPE, CALENDAR_FILENAME, deadlineCalendar } from '../../domain/calendar.ts'
import type { Clock } from '../../domain/clock.ts'
import type { DeadlineRead, EnforcementEngine } from '../../domain/engine.ts'
import { countingMethods, directoryName, isSecondFactor, portalMethodsCount, signInStatus, whyKindDoesNotCount } from '../../domain/protection.ts'
import { dropsAtSmsSunset, type MethodPolicy } from '../../domain/methods.ts'
import type { CampaignDeadline } from '../../domain/deadlines.ts'
import type { Translator } from '../../domain/i18n.ts'
import { requireUser } from '../plugins/auth.ts'
import { signedInRead } from '../plugins/session.ts'
import { english } from '../english.ts'

type Translate = Translator['t']

/** Each kind of portal method as people name it (catalogue keys): use kindLabel(request.i18n.t, kind). */
export const KIND_LABEL_KEYS = { passkey: 'home.kind_passkey', totp: 'home.kind_totp', phone: 'home.kind_phone' } as const

/** A portal method's kind in the reader's words. */
export function kindLabel (t: Translate, kind: keyof typeof KIND_LABEL_KEYS): string {
  return t(KIND_LABEL_KEYS[kind])
}

/**
 * The kinds in English, for pages that do not pass their reader's translator yet; prefer kindLabel(request.i18n.t, …).
 * @deprecated
 */
export const KIND_LABELS: Readonly<Record<keyof typeof KIND_LABEL_KEYS, string>> = {
  get passkey () { return english().t(KIND_LABEL_KEYS.passkey) },
  get totp () { return english().t(KIND_LABEL_KEYS.totp) },
  get phone () { return english().t(KIND_LABEL_KEYS.phone) }
}

/** Method kinds as directories report them (providers/entra/method-kinds.ts, IAM devices), as catalogue keys. */
const DIRECTORY_KIND_KEYS: Readonly<Record<string, string>> = {
  ...KIND_LABEL_KEYS, authenticator: 'home.kind_authenticator', email: 'home.kind_email', external: 'home.kind_external', qr_code_pin: 'home.kind_qr_code_pin'
}

/**
 * What a directory user's method protects, in the reader's words: methods held in the portal "protect this portal
 * only"; those registered at the directory "protect your Microsoft sign-in". Null for the portal's own users.
 */
export function protectsText (t: Translate, provider: string, where: 'portal' | 'directory', whose: 'your' | 'their' = 'your'): string | null {
  const name = directoryName(provider)
  if (name === null) return null
  return where === 'portal' ? t('pages.protects_portal') : t('pages.protects_directory', { whose, directory: name })
}

/** The home page: where the user stands, their methods, and the ways to add one. */
const homeRoutes: FastifyPluginAsync<HomeDeps & CalendarDeps> = async (app, deps) => {
  app.get('/', { preHandler: requireUser, config: { passSession: true, readsDeadline: true } }, async (request, reply) => {
    // The deadline's facts came with the session, for the user it names; the session's own word on who is signed in
    // decides whose page this is (plugins/auth.ts), so a read for anyone else is not used.
    const read = signedInRead(request)
    const user = request.user!
    return reply.page('home', await homeModel(user, deps, request.i18n, {}, read?.userId === user.id ? read.deadline : undefined))
  })

  // The deadline as a calendar file (one event, a reminder the day before, the portal link), for the signed-in user.
  app.get('/deadline.ics', { preHandler: requireUser, config: { passSession: true } }, async (request, reply) => {
    const user = request.user!
    const standing = await deps.engine.standing(user.id)
    const now = deps.clock.now()
    if (standing?.deadline == null || standing.deadline <= now || standing.state === 'exempt') {
      return reply.flashRedirect('/', request.i18n.t('home.no_upcoming_deadline'), 'info')
    }
    return reply
      .type(CALENDAR_CONTENT_TYPE)
      .header('content-disposition', `attachment; filename="${CALENDAR_FILENAME}"`)
      .header('cache-control', 'private, no-store')
      .send(deadlineCalendar({ userId: user.id, deadline: standing.deadline, portalUrl: deps.portalUrl, now }))
  })

  // For the portal's own scripts: who am I? Session-authenticated; JSON errors with stable codes.
  app.get('/api/v1/me', { preHandler: requireUser }, async (request) => {
    const user = request.user!
    return { id: user.id, email: user.email, displayName: user.displayName, role: user.role }
  })
}

export interface HomeDeps {
  engine: Pick<EnforcementEngine, 'deadlineAndPolicy' | 'deadlineAndPolicyFrom'>
  clock: Clock
}

/** For the deadline's calendar file: where the user stands, the time now, and the portal's address. */
export interface CalendarDeps {
  engine: Pick<EnforcementEngine, 'deadlineAndPolicy' | 'deadlineAndPolicyFrom' | 'standing'>
  clock: Clock
  portalUrl: string
}

export interface AddOption {
  kind: 'passkey' | 'totp' | 'phone'
  href: string
  /** In the reader's words (addOptionsFor translates the keys below). */
  label: string
  hint: string
}

/** The options as catalogue keys; translated when a page is written. */
const LOCAL_OPTIONS: AddOption[] = [
  { kind: 'passkey', href: '/enroll/passkey', label: 'home.add_passkey', hint: 'home.add_passkey_hint' },
  { kind: 'totp', href: '/enroll/totp', label: 'home.add_totp', hint: 'home.add_totp_hint' },
  { kind: 'phone', href: '/enroll/phone', label: 'home.add_phone', hint: 'home.add_phone_hint' }
]

/**
 * Where each kind of method is set up, per directory: the portal's own pages for local users; a directory's users
 * set up what the directory itself must hold through that directory's pages (Microsoft's or AWS's, or the
 * portal's brokering pages for them).
 */
const ADD_OPTIONS: Readonly<Record<string, AddOption[]>> = {
  local: LOCAL_OPTIONS,
  // IAM has no SMS MFA for users; security keys are registered in the AWS console (the WebAuthn RP is AWS's).
  aws: [
    { kind: 'totp', href: '/enroll/aws-mfa', label: 'home.add_totp', hint: 'home.add_aws_totp_hint' },
    { kind: 'passkey', href: '/enroll/aws-security-key', label: 'home.add_aws_key', hint: 'home.add_aws_key_hint' }
  ],
  // (add options: aws)
  entra: [
    { kind: 'passkey', href: '/enroll/entra-passkey', label: 'home.add_passkey', hint: 'home.add_entra_passkey_hint' },
    { kind: 'totp', href: '/enroll/entra-app', label: 'home.add_totp', hint: 'home.add_entra_totp_hint' },
    { kind: 'phone', href: '/enroll/phone', label: 'home.add_phone', hint: 'home.add_entra_phone_hint' }
  ]
  // (add options: entra)
}

/** The ways to add a method where the user signs in, in the reader's words (English when no translator is given). */
export function addOptionsFor (provider: string, t: Translate = english().t): AddOption[] {
  return (ADD_OPTIONS[provider] ?? LOCAL_OPTIONS).map(({ kind, href, label, hint }) => ({ kind, href, label: t(label), hint: t(hint) }))
}

/** The home page's data; `read`: the user's deadline facts and campaigns when they were read already (with the session). */
export async function homeModel (
  user: { id: string, privileged: boolean, provider: string, providerMethods: string[] }, { engine, clock }: HomeDeps, i18n: Translator,
  extra: Record<string, unknown> = {}, read?: DeadlineRead
): Promise<Record<string, unknown>> {
  const directory = directoryName(user.provider)
  const now = clock.now()
  // The user's methods come with the deadline's facts, in the same read.
  const { deadline, policy, methods: list, recoveryCodes } = read !== undefined ? engine.deadlineAndPolicyFrom(read) : await engine.deadlineAndPolicy(user.id)
  // Recovery codes are the portal's own: they count only where portal methods do.
  const codes = portalMethodsCount(user.provider) ? recoveryCodes : 0
  return {
    title: i18n.t('home.title'),
    // A directory user's portal methods serve the portal's own sign-in and step-up, and the page says so.
    // Copies by Object.assign, not by spreads: on every page view (see web/eta-data.ts).
    methods: list.map((m) => Object.assign({}, m, { kindLabel: kindLabel(i18n.t, m.kind), protects: protectsText(i18n.t, user.provider, 'portal') })),
    // The campaign behind the user's deadline decides what counts (text messages, privileged users' passkeys), and
    // where the user signs in decides which methods: for a directory user only those registered there.
    status: signInStatus(user, list.map((m) => m.kind), policy, now, codes),
    // Text messages stop counting on a date: those relying on them are told before, and after, why their deadline moved.
    smsSunset: smsSunsetNotice(user, list.map((m) => m.kind), codes, policy, deadline, now),
    directory: directory === null
      ? null
      : {
          name: directory,
          methods: user.providerMethods.map((kind) => ({
            label: DIRECTORY_KIND_KEYS[kind] === undefined ? kind : i18n.t(DIRECTORY_KIND_KEYS[kind]),
            protects: isSecondFactor(kind) ? protectsText(i18n.t, user.provider, 'directory') : i18n.t('home.not_second_factor')
          }))
        },
    // Methods that would not count for this user (privileged accounts' policy, text messages) are offered apart.
    // Copies as literals (one hidden class each, known in advance), not by Object.assign or a spread.
    addOptions: addOptionsFor(user.provider, i18n.t).map(({ kind, href, label, hint }) => ({ kind, href, label, hint, notCounting: whyKindDoesNotCount(user, kind, policy, now) })),
    // When the new-user window set the deadline: from which date it counts (the directory's, or first seen).
    newUserWindow: deadline?.newUserWindow ?? null,
    error: null,
    ...extra
  }
}

/**
 * The SMS sunset as the home page says it: 'upcoming' while text messages still count for someone who relies on them
 * (with the date), 'passed' once their deadline was moved by it (with the new date). Null for everyone else.
 */
export function smsSunsetNotice (
  user: { privileged: boolean, provider: string, providerMethods: readonly string[] },
  portalKinds: readonly string[],
  recoveryCodes: number,
  policy: MethodPolicy,
  deadline: CampaignDeadline | null,
  now: Date
): { stage: 'upcoming' | 'passed', at: Date, becomes: 'weak' | 'excluded', deadline: Date | null, graceDays: number | null } | null {
  const at = policy.smsSunsetAt
  if (at == null) return null
  const becomes = policy.smsAfterSunset ?? 'excluded'
  if (deadline?.smsSunset != null) return { stage: 'passed', at, becomes, deadline: deadline.deadline, graceDays: deadline.smsSunset.graceDays }
  if (now >= at) return null
  const kinds = countingMethods({ provider: user.provider, portalMethods: portalKinds, providerMethods: user.providerMethods, recoveryCodes })
  return dropsAtSmsSunset(user.privileged, kinds, policy) ? { stage: 'upcoming', at, becomes, deadline: null, graceDays: null } : null
}

export default homeRoutes
