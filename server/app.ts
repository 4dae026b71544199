import { maxHeaderSize } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import formbody from '@fastify/formbody'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { fastifyTrustProxy } from './config.ts'
import { loggerOptions } from './logging.ts'
import type { Services } from './wiring.ts'
import authPlugin from './web/plugins/auth.ts'
import csrfPlugin from './web/plugins/csrf.ts'
import errorPages from './web/plugins/errors.ts'
import { clientErrorHandler, frameworkErrors, routableUrl } from './web/framework-errors.ts'
import stepUpActions from './web/plugins/step-up-actions.ts'
import metricsPlugin from './web/plugins/metrics.ts'
import rateLimitPlugin from './web/plugins/rate-limit.ts'
import securityHeaders from './web/plugins/security-headers.ts'
import sessionPlugin from './web/plugins/session.ts'
import storageFailures from './web/plugins/storage-failures.ts'
import staticFiles from './web/plugins/static-files.ts'
import viewsPlugin from './web/plugins/views.ts'
import preferenceRoutes from './web/routes/preferences.ts'
import adminRoutes from './web/routes/admin.ts'
import adminCampaignRoutes from './web/routes/admin-campaigns.ts'
import authRoutes from './web/routes/auth.ts'
import healthRoutes from './web/routes/health.ts'
import helpdeskRoutes from './web/routes/helpdesk.ts'
import enrollPasskeyRoutes from './web/routes/enroll-passkey.ts'
import enrollPhoneRoutes from './web/routes/enroll-phone.ts'
import enrollTotpRoutes from './web/routes/enroll-totp.ts'
import homeRoutes from './web/routes/home.ts'
import methodRoutes from './web/routes/methods.ts'
import passkeySignInRoutes from './web/routes/passkey-signin.ts'
import stepUpRoutes from './web/routes/step-up.ts'
import recoveryCodeRoutes from './web/routes/recovery-codes.ts'
import adminComplianceRoutes from './web/routes/admin-compliance.ts'
import adminTokenRoutes from './web/routes/admin-tokens.ts'
import apiRoutes from './web/routes/api.ts'
// (imports: api and compliance routes)
import awsPortalRoutes from './web/routes/aws-portal.ts'
// (imports: aws portal routes)
import entraSignInRoutes from './web/routes/entra-signin.ts'
import enrollEntraRoutes from './web/routes/enroll-entra.ts'
// (imports: entra portal routes)
import adminAuditRoutes from './web/routes/admin-audit.ts'
import adminExemptionRoutes from './web/routes/admin-exemptions.ts'
import adminApprovalRoutes from './web/routes/admin-approvals.ts'
import { soleLeader, type Leadership } from './domain/leadership.ts'
// (imports: admin dashboard, audit and exemption routes)

export interface BuildOptions {
  /** Overrides the logger built from config (tests pass false). */
  logger?: boolean
  /** Where the logger writes (default stdout); tests read what would be logged. */
  logStream?: NodeJS.WritableStream
  /** Who runs the scheduler, for /readyz (default: this process alone). */
  leadership?: Leadership
}

/** Builds the Fastify instance: plugins in order, then routes. It does not listen. */
export async function buildApp (services: Services, options: BuildOptions = {}): Promise<FastifyInstance> {
  const { config } = services
  const app = Fastify({
    logger: options.logger === false ? false : { ...loggerOptions(config), ...(options.logStream === undefined ? {} : { stream: options.logStream }) },
    // Only the configured proxies' hops of X-Forwarded-For are believed (never "true": see config.ts).
    trustProxy: fastifyTrustProxy(config.trustProxy),
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    // No framework error skips the app's own pages and JSON (web/framework-errors.ts): an address that does not
    // decode is routed and then refused by the app; the router cuts no id short (no segment outlives the request
    // line), so each route's schema says how long its ids may be, after its guard has asked who is calling.
    rewriteUrl: routableUrl,
    routerOptions: { maxParamLength: maxHeaderSize },
    frameworkErrors,
    clientErrorHandler
  }).withTypeProvider<TypeBoxTypeProvider>()

  await app.register(metricsPlugin, { token: config.metricsToken, production: config.production })
  await app.register(securityHeaders, { config })
  await app.register(storageFailures, { storage: services.storage })
  await app.register(sessionPlugin, { config, store: services.sessions, storage: services.storage })
  await app.register(formbody, { bodyLimit: 64 * 1024 })
  await app.register(csrfPlugin, { config })
  await app.register(rateLimitPlugin)
  await app.register(viewsPlugin, { config, localiser: services.localiser })
  await app.register(staticFiles)
  await app.register(authPlugin, { config, users: services.users, clock: services.clock, standing: async (userId) => await services.engine.standing(userId) })
  await app.register(errorPages)
  await app.register(stepUpActions, { guard: services.guard, clock: services.clock })

  await app.register(healthRoutes, { readiness: async () => await services.stores.readiness(), storage: services.storage, leadership: options.leadership ?? soleLeader('this process') })
  await app.register(authRoutes, { signIn: services.signIn, passes: services.passes, methods: services.methods, clock: services.clock, staffPasskeyRequired: config.staffPasskeyRequired, passwordSignIn: config.passwordSignIn, microsoftSignIn: config.entra?.signIn !== undefined })
  await app.register(homeRoutes, { engine: services.engine, clock: services.clock, portalUrl: config.publicUrl.origin + '/' })
  await app.register(methodRoutes, { lifecycle: services.lifecycle, engine: services.engine, clock: services.clock })
  await app.register(stepUpRoutes, { methods: services.methods, totp: services.totp, phone: services.phone, passkeys: services.passkeys, clock: services.clock, staffPasskeyRequired: config.staffPasskeyRequired })
  await app.register(recoveryCodeRoutes, { services })
  await app.register(enrollPasskeyRoutes, { services })
  await app.register(passkeySignInRoutes, { services })
  await app.register(enrollTotpRoutes, { services })
  await app.register(enrollPhoneRoutes, { services })
  await app.register(helpdeskRoutes, { prefix: '/helpdesk', helpdesk: services.helpdesk, clock: services.clock, config })
  await app.register(adminRoutes, { prefix: '/admin', outbox: services.outbox, dashboard: services.dashboard, engine: services.engine, campaigns: services.campaigns, clock: services.clock,
    directories: async () => await Promise.all(Object.keys(services.providers).filter((name) => name !== 'local').map(async (provider) => ({ provider, run: await services.directorySync.latest(provider) ?? null }))),
    lastDriftCheck: async () => await services.driftChecks.latest(), delivery: config })
  await app.register(adminCampaignRoutes, { prefix: '/admin/campaigns', campaigns: services.campaigns, engine: services.engine, clock: services.clock, rollout: services.rollout, dashboard: services.dashboard })
  await app.register(apiRoutes, { services })
  await app.register(adminTokenRoutes, { prefix: '/admin/tokens', services })
  await app.register(adminComplianceRoutes, { services })
  // (routes: api and compliance)
  await app.register(awsPortalRoutes, { services })
  // (routes: aws portal)
  await app.register(entraSignInRoutes, { services })
  await app.register(enrollEntraRoutes, { services })
  // (routes: entra portal)
  await app.register(adminAuditRoutes, { prefix: '/admin/audit', audit: services.audit, users: services.users, clock: services.clock })
  await app.register(adminExemptionRoutes, { prefix: '/admin/exemptions', campaigns: services.campaigns, users: services.users, clock: services.clock })
  // (routes: admin dashboard, audit and exemptions)
  await app.register(preferenceRoutes, { users: services.users, secureCookie: config.session.secureCookie, clock: services.clock })
  await app.register(adminApprovalRoutes, { prefix: '/admin/approvals', approvals: services.approvals, users: services.users, enabled: config.twoPersonRule.enabled })

  return app
}
