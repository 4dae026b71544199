import type { FastifyPluginAsync } from 'fastify'
import { CALENDAR_CONTENT_TYPE, CALENDAR_FILENAME, deadlineCalendar } from '../../domain/calendar.ts'
import type { Clock } from '../../domain/clock.ts'
import type { EnforcementEngine } from '../../domain/engine.ts'
import type { MethodStore } from '../../domain/methods.ts'
import { directoryName, isSecondFactor, protectsLabel, signInStatus } from '../../domain/protection.ts'
import { requireUser } from '../plugins/auth.ts'

export const KIND_LABELS = { passkey: 'Passkey or security key', totp: 'Authenticator app', phone: 'Phone (text message)' } as const

/** Method kinds as directories report them (providers/entra/method-kinds.ts, IAM devices). */
const DIRECTORY_KIND_LABELS: Readonly<Record<string, string>> = {
  ...KIND_LABELS, authenticator: 'Microsoft Authenticator', email: 'Email address', external: 'External method', qr_code_pin: 'QR code with PIN'
}

/** The home page: where the user stands, their methods, and the ways to add one. */
const homeRoutes: FastifyPluginAsync<HomeDeps & CalendarDeps> = async (app, deps) => {
  app.get('/', { preHandler: requireUser, config: { passSession: true } }, async (request, reply) => {
    return reply.page('home', homeModel(request.user!, deps))
  })

  // The deadline as a calendar file (one event, a reminder the day before, the portal link), for the signed-in user.
  app.get('/deadline.ics', { preHandler: requireUser, config: { passSession: true } }, async (request, reply) => {
    const user = request.user!
    const standing = deps.engine.standing(user.id)
    const now = deps.clock.now()
    if (standing?.deadline == null || standing.deadline <= now || standing.state === 'exempt') {
      return reply.flashRedirect('/', 'You have no upcoming deadline to add to a calendar.', 'info')
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
  methods: MethodStore
  engine: Pick<EnforcementEngine, 'methodPolicy' | 'explainDeadline'>
}

/** For the deadline's calendar file: where the user stands, the time now, and the portal's address. */
export interface CalendarDeps {
  engine: Pick<EnforcementEngine, 'methodPolicy' | 'explainDeadline' | 'standing'>
  clock: Clock
  portalUrl: string
}

export interface AddOption {
  kind: 'passkey' | 'totp' | 'phone'
  href: string
  label: string
  hint: string
}

const LOCAL_OPTIONS: AddOption[] = [
  { kind: 'passkey', href: '/enroll/passkey', label: 'Passkey or security key', hint: 'Sign in with your fingerprint, face, PIN or a USB/NFC key. The strongest choice.' },
  { kind: 'totp', href: '/enroll/totp', label: 'Authenticator app', hint: 'Microsoft Authenticator, Google Authenticator or any app that shows 6-digit codes.' },
  { kind: 'phone', href: '/enroll/phone', label: 'Phone', hint: 'Get a 6-digit code by text message.' }
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
    { kind: 'totp', href: '/enroll/aws-mfa', label: 'Authenticator app', hint: 'Microsoft Authenticator, Google Authenticator or any app that shows 6-digit codes. Set up here for your AWS sign-in.' },
    { kind: 'passkey', href: '/enroll/aws-security-key', label: 'Security key or passkey', hint: 'A USB/NFC key or passkey, registered in the AWS console. The strongest choice.' }
  ],
  // (add options: aws)
  entra: [
    { kind: 'passkey', href: '/enroll/entra-passkey', label: 'Passkey or security key', hint: 'Sign in to Microsoft with your fingerprint, face, PIN or a USB/NFC key, set up on Microsoft\'s page. The strongest choice.' },
    { kind: 'totp', href: '/enroll/entra-app', label: 'Authenticator app', hint: 'Microsoft Authenticator, Google Authenticator or any app that shows 6-digit codes, for your Microsoft sign-in.' },
    { kind: 'phone', href: '/enroll/phone', label: 'Phone', hint: 'Get a 6-digit code by text message; the number is also used by Microsoft.' }
  ]
  // (add options: entra)
}

export function addOptionsFor (provider: string): AddOption[] {
  return ADD_OPTIONS[provider] ?? LOCAL_OPTIONS
}

export function homeModel (user: { id: string, privileged: boolean, provider: string, providerMethods: string[] }, { methods, engine }: HomeDeps, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const list = methods.listFor(user.id)
  const directory = directoryName(user.provider)
  return {
    title: 'Your sign-in security',
    // A directory user's portal methods serve the portal's own sign-in and step-up, and the page says so.
    methods: list.map((m) => ({ ...m, kindLabel: KIND_LABELS[m.kind], protects: protectsLabel(user.provider, 'portal') })),
    // The campaign behind the user's deadline decides what counts (text messages, privileged users' passkeys), and
    // where the user signs in decides which methods: for a directory user only those registered there.
    status: signInStatus(user, list.map((m) => m.kind), engine.methodPolicy(user.id)),
    directory: directory === null
      ? null
      : {
          name: directory,
          methods: user.providerMethods.map((kind) => ({
            label: DIRECTORY_KIND_LABELS[kind] ?? kind,
            protects: isSecondFactor(kind) ? protectsLabel(user.provider, 'directory') : 'not a second factor: it does not protect your sign-in'
          }))
        },
    addOptions: addOptionsFor(user.provider),
    // When the new-user window set the deadline: from which date it counts (the directory's, or first seen).
    newUserWindow: engine.explainDeadline(user.id)?.newUserWindow ?? null,
    error: null,
    ...extra
  }
}

export default homeRoutes
