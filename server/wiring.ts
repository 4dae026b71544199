import pino from 'pino'
import type { Config } from './config.ts'
import { SqliteAuditLog } from './db/audit.ts'
import { SqliteCampaignStore } from './db/campaigns.ts'
import { SqliteDashboardStore } from './db/dashboard.ts'
import { SqliteEngineStore } from './db/engine.ts'
import { SqliteReminderStore } from './db/reminders.ts'
import { SqliteAccessPassStore, SqliteChallengeStore, SqliteNoticeStore, SqliteOutbox } from './db/enrollment-stores.ts'
import { SqliteMethodStore } from './db/methods.ts'
import { SqlitePendingStore } from './db/pending.ts'
import { Sealer } from './db/sealing.ts'
import { openDatabase, type Database } from './db/connection.ts'
import { applyMigrations } from './db/migrate.ts'
import { SqliteSessionStore } from './db/sessions.ts'
import { SqliteThrottleStore } from './db/throttles.ts'
import { SqliteUserStore } from './db/users.ts'
import { systemClock, type Clock } from './domain/clock.ts'
import { CampaignService } from './domain/campaigns.ts'
import { EnforcementEngine, DEFAULT_ENGINE_SETTINGS, type EngineSettings, type EngineStore } from './domain/engine.ts'
import { EnrollmentGuard } from './domain/enrollment-guard.ts'
import { HelpdeskService } from './domain/helpdesk.ts'
import { ProviderError, type IdentityProvider } from './domain/provider.ts'
import { KeyedHasher } from './domain/keyed-hash.ts'
import { MethodLifecycle, type Logger } from './domain/method-lifecycle.ts'
import type { SmsSender } from './domain/notifications.ts'
import { AccessPassService } from './domain/passes.ts'
import { PasskeyService } from './domain/passkeys.ts'
import { PhoneService } from './domain/phone.ts'
import { Regulator } from './domain/regulation.ts'
import { ReminderService } from './domain/reminders.ts'
import { TotpService } from './domain/totp.ts'
import { loggerOptions } from './logging.ts'
import { EmailNotifier } from './notify/email-notifier.ts'
import { OutboxMailTransport, SmtpTransport } from './notify/mail.ts'
import { OutboxSms, SnsSms, TwilioSms } from './notify/sms.ts'
import { LocalProvider } from './providers/local/provider.ts'
import { AwsIamProvider } from './providers/aws/provider.ts'
import { EntraProvider } from './providers/entra/provider.ts'
import { SqliteDirectorySyncStore } from './db/directory-sync.ts'
import { DirectorySyncService } from './domain/directory-sync.ts'
import { SignInService } from './domain/signin.ts'
import { UserService } from './domain/users.ts'

/** Everything the web layer, the jobs and the CLI use, built in one place. */
export interface Services {
  config: Config
  clock: Clock
  database: Database
  users: SqliteUserStore
  userService: UserService
  audit: SqliteAuditLog
  throttles: SqliteThrottleStore
  regulator: Regulator
  signIn: SignInService
  sessions: SqliteSessionStore
  methods: SqliteMethodStore
  pending: SqlitePendingStore
  outbox: SqliteOutbox
  challenges: SqliteChallengeStore
  guard: EnrollmentGuard
  lifecycle: MethodLifecycle
  totp: TotpService
  phone: PhoneService
  passkeys: PasskeyService
  passes: AccessPassService
  engineStore: EngineStore
  engine: EnforcementEngine
  campaigns: CampaignService
  reminders: ReminderService
  helpdesk: HelpdeskService
  /** Emails to people (SMTP, or the sandbox outbox). */
  notifier: EmailNotifier
  /** Every configured provider by name ('local' always). */
  providers: Readonly<Record<string, IdentityProvider>>
  directorySync: DirectorySyncService
  /** Counts for the admin dashboard and the daily burn-down snapshots. */
  dashboard: SqliteDashboardStore
  close(): void
}

export interface ServiceOverrides {
  clock?: Clock
  log?: Logger
  /** Replaces the configured SMS sender (benchmarks; tests use the outbox like the sandbox does). */
  sms?: SmsSender
  /** Identity providers by name, replacing the configured ones (tests and benchmarks use scripted fakes). */
  providers?: Record<string, IdentityProvider>
  /** Wraps the engine's store (crash-safety tests stop the process at chosen points through it). */
  wrapEngineStore?: (store: EngineStore) => EngineStore
  engineSettings?: Partial<EngineSettings>
  sleep?: (ms: number) => Promise<void>
}

/** Opens the database, applies pending migrations and builds every adapter and domain service. */
export function createServices (config: Config, overrides: ServiceOverrides = {}): Services {
  const clock = overrides.clock ?? systemClock
  const database = openDatabase(config.databaseFile)
  applyMigrations(database.db)

  const users = new SqliteUserStore(database.db, clock)
  const audit = new SqliteAuditLog(database.sqlite, clock)
  const throttles = new SqliteThrottleStore(database.sqlite)
  const regulator = new Regulator(throttles, clock)
  const sessions = new SqliteSessionStore(database.sqlite, clock, config.session)
  const { signIn: limits } = config
  const signIn = new SignInService(users, regulator, audit, {
    account: { maxFailures: limits.maxFailuresPerAccount, windowMs: limits.windowMs, lockoutMs: limits.lockoutMs },
    ip: { maxFailures: limits.maxFailuresPerIp, windowMs: limits.windowMs, lockoutMs: limits.lockoutMs }
  }, () => clock.now())

  const log = overrides.log ?? pino(loggerOptions(config))
  const sealer = new Sealer(config.encryptionKey, config.previousEncryptionKeys)
  const hasher = new KeyedHasher(config.encryptionKey)
  const methods = new SqliteMethodStore(database.db, sealer, clock)
  const pending = new SqlitePendingStore(database.db, sealer, clock)
  const challenges = new SqliteChallengeStore(database.db)
  const outbox = new SqliteOutbox(database.db)
  const notifier = new EmailNotifier(
    config.mail.smtpUrl === undefined ? new OutboxMailTransport(outbox, clock) : new SmtpTransport(config.mail.smtpUrl, config.mail.from),
    config.webauthn.rpName
  )
  const sms = overrides.sms ?? smsSender(config, outbox, clock)
  const guard = new EnrollmentGuard(config.trustedNetworks, config.stepUpMs)
  // The engine is built below; method changes reach it through this late-bound hook.
  let engineRef: EnforcementEngine | undefined
  let engineStoreRef: EngineStore | undefined
  const lifecycle = new MethodLifecycle(methods, new SqliteNoticeStore(database.db), users, guard, hasher, notifier, audit, clock, config.publicUrl, log, {
    isBreakGlass: (userId) => {
      const exemption = engineStoreRef?.facts(userId)?.exemption
      return exemption?.kind === 'break_glass' && (exemption.expiresAt === null || exemption.expiresAt > clock.now())
    },
    methodsChanged: (userId) => { engineRef?.refreshUser(userId) }
  })

  const local = new LocalProvider(users, methods, () => clock.now())
  const campaignStore = new SqliteCampaignStore(database.db)
  const providers: Record<string, IdentityProvider> = { local }
  if (config.entra !== undefined) {
    providers.entra = new EntraProvider(config.entra, {
      now: () => clock.now(),
      // Entra campaigns name groups by object id; their members are read on each sync.
      campaignGroupIds: () => campaignStore.list().filter((c) => c.targetKind === 'group' && c.targetValue !== null).map((c) => c.targetValue!)
    })
  }
  if (config.aws !== undefined) providers.aws = new AwsIamProvider(config.aws, { clock })
  Object.assign(providers, overrides.providers)
  const baseEngineStore = new SqliteEngineStore(database.sqlite, campaignStore)
  const engineStore = overrides.wrapEngineStore?.(baseEngineStore) ?? baseEngineStore
  const engine = new EnforcementEngine(engineStore, (name) => {
    const provider = providers[name]
    if (provider === undefined) throw new ProviderError(`no provider "${name}" is configured`, false, null, 'provider_not_configured')
    return provider
  }, audit, clock, {
    ...DEFAULT_ENGINE_SETTINGS,
    defaultMethodPolicy: { ...DEFAULT_ENGINE_SETTINGS.defaultMethodPolicy, smsPolicy: config.smsCounts ? 'counts' : 'excluded' },
    ...overrides.engineSettings
  }, overrides.sleep)
  engineRef = engine
  engineStoreRef = engineStore
  const campaigns = new CampaignService(campaignStore, engine, audit, clock)
  const passes = new AccessPassService(new SqliteAccessPassStore(database.db), users, hasher, regulator, audit, clock)

  return {
    config,
    clock,
    database,
    users,
    userService: new UserService(users, audit, sessions, { run: (work) => database.sqlite.transaction(work).immediate() }),
    audit,
    throttles,
    regulator,
    signIn,
    sessions,
    methods,
    pending,
    outbox,
    challenges,
    guard,
    lifecycle,
    totp: new TotpService(methods, pending, regulator, guard, lifecycle, audit, clock, config.totpIssuer),
    phone: new PhoneService(methods, pending, sms, hasher, guard, lifecycle, audit, clock, {
      source: config.phoneSource, defaultRegion: config.phoneDefaultRegion, organisation: config.webauthn.rpName
    }),
    passkeys: new PasskeyService(methods, challenges, users, guard, lifecycle, audit, clock, config.webauthn),
    passes,
    engineStore,
    engine,
    campaigns,
    providers,
    notifier,
    directorySync: new DirectorySyncService(new SqliteDirectorySyncStore(database.sqlite), engine, audit, clock, config.phoneDefaultRegion),
    helpdesk: new HelpdeskService(users, methods, passes, campaigns, engine, audit, sessions, notifier, clock, { accessPass: config.accessPass, resetWindowMs: config.resetWindowMs }, providers),
    reminders: new ReminderService(new SqliteReminderStore(database.sqlite), notifier, audit, clock, config.publicUrl.origin + '/', log),
    dashboard: new SqliteDashboardStore(database.sqlite),
    close: () => database.close()
  }
}

function smsSender (config: Config, outbox: SqliteOutbox, clock: Clock): SmsSender {
  switch (config.sms.provider) {
    case 'twilio': return new TwilioSms(config.sms.twilio!)
    case 'aws-sns': return new SnsSms(config.sms.sns!)
    default: return new OutboxSms(outbox, clock)
  }
}
