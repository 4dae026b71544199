import { EntraEnrollmentService } from './domain/entra-enrollment.ts'
import { EntraPhoneService, type PrepopulateOptions, type PrepopulateReport } from './domain/entra-phones.ts'
import { MicrosoftSignInService } from './domain/microsoft-signin.ts'
import type { Actor } from './domain/users.ts'
import { EmailNotifier } from './notify/email-notifier.ts'
import { OutboxMailTransport, SmtpTransport } from './notify/mail.ts'
import { rewriteOrigin } from './providers/entra/auth.ts'
import { EntraProvider } from './providers/entra/provider.ts'
import type { Services } from './wiring.ts'

/** The portal's Entra-only flows, built from the shared services when Entra is configured. */
export interface EntraPortal {
  provider: EntraProvider
  /** Present when ENTRA_REDIRECT_URI is set. */
  signIn: MicrosoftSignInService | undefined
  phones: EntraPhoneService
  enrollment: EntraEnrollmentService
}

const built = new WeakMap<Services, EntraPortal | null>()

/**
 * Built once per Services, beside wiring.ts like wiring-automation.ts; undefined when PROVIDERS has no entra (or
 * a test replaced it with a scripted fake, which has none of these operations).
 */
export function entraPortal (services: Services): EntraPortal | undefined {
  const existing = built.get(services)
  if (existing !== undefined) return existing ?? undefined
  const provider = services.providers.entra
  const portal = provider instanceof EntraProvider ? buildPortal(services, provider) : null
  built.set(services, portal)
  return portal ?? undefined
}

function buildPortal (services: Services, provider: EntraProvider): EntraPortal {
  const { config, clock, audit, methods, regulator, guard, engine, outbox } = services
  const store = services.stores.entraPortal
  const notifier = new EmailNotifier(
    config.mail.smtpUrl === undefined ? new OutboxMailTransport(outbox, clock) : new SmtpTransport(config.mail.smtpUrl, config.mail.from),
    config.webauthn.rpName,
    services.localiser
  )
  const signIn = provider.config.signIn === undefined
    ? undefined
    : new MicrosoftSignInService({
      // MSAL addresses the public cloud when an emulator on plain http stands in (auth.ts Origins); the browser
      // must be sent where the authority really is.
      authCodeUrl: async (request) => rewriteOrigin(await provider.authCodeUrl(request), provider.origins.authority),
      redeemCode: async (request) => await provider.redeemCode(request)
    }, async (objectId) => {
      const id = await store.userIdByObjectId(objectId)
      return id === undefined ? undefined : await services.users.findById(id)
    }, async (userId) => (await methods.listFor(userId)).map((m) => m.kind), audit, clock, config.staffPasskeyRequired)
  return {
    provider,
    signIn,
    phones: new EntraPhoneService(provider, store, guard, audit, config.phoneDefaultRegion),
    enrollment: new EntraEnrollmentService(provider, store, methods, regulator, guard, notifier, audit, clock,
      async (userId) => { await engine.refreshUser(userId) }, { hardwareOath: provider.config.hardwareOath, issuer: config.totpIssuer })
  }
}

/**
 * Phone pre-population for Entra users, for the CLI (`mfa-rollout entra-phones`) and the admin API: plans (dryRun)
 * or writes each user's mobile MFA method from their directory number, with one report line per user.
 */
export async function prepopulateEntraPhones (services: Services, options: PrepopulateOptions, actor: Actor): Promise<PrepopulateReport | undefined> {
  return await entraPortal(services)?.phones.prepopulate(options, actor)
}
