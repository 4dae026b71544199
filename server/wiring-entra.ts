import { EntraEnrollmentService } from './domain/entra-enrollment.ts'
import { EntraPhoneService } from './domain/entra-phones.ts'
import { MicrosoftSignInService } from './domain/microsoft-signin.ts'
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

/**
 * Built by createServices (wiring.ts) when PROVIDERS has entra, as `services.entra`: this module, and Microsoft's SDKs
 * with it, is loaded only then. Undefined when the adapter is not the real one (a test's scripted fake has none of
 * these operations).
 */
export function buildEntraPortal (services: Services): EntraPortal | undefined {
  const provider = services.providers.entra
  return provider instanceof EntraProvider ? buildPortal(services, provider) : undefined
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
