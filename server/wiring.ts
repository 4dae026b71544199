import { hkdfSync } from 'node:crypto'
import { hostname } from 'node:os'
import { readFileSync } from 'node:fs'
import { Signer } from '@fastify/cookie'
import pino from 'pino'
import type { Config } from './config.ts'
import { ChainKeyring, type AuditStore } from './domain/audit.ts'
import { AuditAnchors, type AnchorLog } from './domain/audit-anchors.ts'
import { HttpAnchorPublisher } from './notify/audit-anchor.ts'
import { RolloutGuard } from './domain/rollout-guard.ts'
import { Sealer } from './db/sealing.ts'
import { openDatabase, type Database } from './db/connection.ts'
import { applyMigrations } from './db/migrate.ts'
import { sqliteStores, type StoreDependencies, type Stores } from './db/stores.ts'
import type { StorageMonitor } from './domain/storage.ts'
import { KnownDevices } from './domain/known-devices.ts'
import { ApprovalService } from './domain/approvals.ts'
import { InvitationService } from './domain/invitations.ts'
import { systemClock, type Clock } from './domain/clock.ts'
import { CampaignService } from './domain/campaigns.ts'
import { CampaignAccessKeys, type AccessKeySource } from './domain/access-keys.ts'
import { EnforcementEngine, DEFAULT_ENGINE_SETTINGS, type EngineSettings, type EngineStore } from './domain/engine.ts'
import { EnrollmentGuard } from './domain/enrollment-guard.ts'
import { HelpdeskService } from './domain/helpdesk.ts'
import { ProviderError, type IdentityProvider } from './domain/provider.ts'
import { KeyedHasher } from './domain/keyed-hash.ts'
import { MethodLifecycle, type Logger } from './domain/method-lifecycle.ts'
import type { Outbox, SmsSender } from './domain/notifications.ts'
import { AccessPassService } from './domain/passes.ts'
import type { MethodStore } from './domain/methods.ts'
import type { PendingStore } from './domain/pending.ts'
import type { DashboardStore } from './domain/dashboard.ts'
import { RecoveryCodeService } from './domain/recovery-codes.ts'
import { PasskeyService, type ChallengeStore } from './domain/passkeys.ts'
import type { AuthenticatorMetadata } from './domain/authenticator-metadata.ts'
import type { EntraPortal } from './wiring-entra.ts'
import { PhoneService } from './domain/phone.ts'
import { SmsSendLimits } from './domain/sms-limits.ts'
import { Regulator, type ThrottleRows } from './domain/regulation.ts'
import { ReminderService } from './domain/reminders.ts'
import { SmsSunsetService } from './domain/sms-sunset.ts'
import { TotpService } from './domain/totp.ts'
import { loggerOptions } from './logging.ts'
import { EmailNotifier } from './notify/email-notifier.ts'
import { OutboxMailTransport, SmtpTransport } from './notify/mail.ts'
import { OutboxSms, SnsSms, TwilioSms } from './notify/sms.ts'
import { LocalProvider } from './providers/local/provider.ts'
import { DirectorySyncService } from './domain/directory-sync.ts'
import { DriftCheckService } from './domain/drift-checks.ts'
import { SignInService } from './domain/signin.ts'
import { UserService, type SessionStore, type UserStore } from './domain/users.ts'
import { loadCatalogues, Localiser, LOCALES_DIR } from './domain/i18n.ts'

/** Everything the web layer, the jobs and the CLI use, built in one place. */
export interface Services {
  config: Config
  clock: Clock
  /**
   * The SQLite database (backups, migrations, tests that read rows directly). With DATABASE_URL set there is none:
   * using it throws, naming the setting.
   */
  database: Database
  /** Every store of this instance, on SQLite or PostgreSQL. */
  stores: Stores
  /** Failing writes (a full disk) and quick_check results, for /readyz and the log. */
  storage: StorageMonitor
  users: UserStore
  userService: UserService
  audit: AuditStore
  /** Publishes the audit chain's head outside the database (the log stream, AUDIT_ANCHOR_URL). */
  auditAnchors: AuditAnchors
  throttles: ThrottleRows
  regulator: Regulator
  signIn: SignInService
  sessions: SessionStore
  methods: MethodStore
  pending: PendingStore
  outbox: Outbox
  challenges: ChallengeStore
  guard: EnrollmentGuard
  lifecycle: MethodLifecycle
  totp: TotpService
  phone: PhoneService
  passkeys: PasskeyService
  passes: AccessPassService
  recoveryCodes: RecoveryCodeService
  engineStore: EngineStore
  engine: EnforcementEngine
  /** Around every sweep: the breaker that pauses a campaign by itself, and the waves; admins resume and start waves. */
  rollout: RolloutGuard
  campaigns: CampaignService
  reminders: ReminderService
  /** Text messages that stop counting on a campaign's date: reminders before it, states re-derived on it. */
  smsSunset: SmsSunsetService
  helpdesk: HelpdeskService
  /** Sign-in invitations e-mailed by the helpdesk (people without a portal password, such as IAM users). */
  invitations: InvitationService
  /** The two-person rule: requests for passes, resets and invitations on privileged accounts. */
  approvals: ApprovalService
  /** Emails to people (SMTP, or the sandbox outbox). */
  notifier: EmailNotifier
  /** Every configured provider by name ('local' always). */
  providers: Readonly<Record<string, IdentityProvider>>
  /** Entra's own flows (Microsoft sign-in, phones, enrollment) when PROVIDERS has entra and the adapter is the real one. */
  entra: EntraPortal | undefined
  directorySync: DirectorySyncService
  /** Drift checks that record how they went (the CLI's exit status, the dashboard's last check). */
  driftChecks: DriftCheckService
  /** Counts for the admin dashboard and the daily burn-down snapshots. */
  dashboard: DashboardStore
  /** Message catalogues and date formats per language and time zone (pages, e-mails, text messages). */
  localiser: Localiser
  /** Runs work as one transaction across every store (all of it is written, or none). */
  atomically<T>(work: () => Promise<T>): Promise<T>
  close(): Promise<void>
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
  /** Opens the database read-only and applies no migration (CLI commands that only read, such as audit verify). */
  readOnly?: boolean
}

/** Opens the database, applies pending migrations and builds every adapter and domain service. */
export async function createServices (config: Config, overrides: ServiceOverrides = {}): Promise<Services> {
  const clock = overrides.clock ?? systemClock
  const sealer = new Sealer(config.encryptionKey, config.previousEncryptionKeys)
  const keys = ChainKeyring.fromSecrets(config.audit.key, config.encryptionKey, config.previousEncryptionKeys)
  const { stores, database } = await openStores(config, { sealer, clock, keys, sessionTimeouts: config.session }, overrides.readOnly === true)
  const { users, audit, throttles, sessions, methods, pending, challenges, outbox } = stores
  // A chain written before keyed hashes is keyed from here on, with the migrations (its old hashes stay verifiable).
  if (overrides.readOnly !== true) await audit.upgradeChain()
  const regulator = new Regulator(throttles, clock)
  const { signIn: limits } = config
  // Device cookies are signed with @fastify/cookie's Signer under a key of their own, derived from the session secret.
  const deviceSigner = new Signer(Buffer.from(hkdfSync('sha256', config.sessionSecret, Buffer.alloc(0), 'mfa-rollout device cookie v1', 32)))
  const devices = new KnownDevices(deviceSigner, new KeyedHasher(config.encryptionKey), () => clock.now(), { lifetimeMs: limits.deviceLifetimeMs, secure: config.session.secureCookie })
  const signIn = new SignInService(users, regulator, audit, {
    account: { maxFailures: limits.maxFailuresPerAccount, windowMs: limits.windowMs, lockoutMs: limits.lockoutMs },
    ip: { maxFailures: limits.maxFailuresPerIp, windowMs: limits.windowMs, lockoutMs: limits.lockoutMs }
  }, devices, () => clock.now())

  const log = overrides.log ?? pino(loggerOptions(config))
  // The chain's head leaves the database as a log line (and to AUDIT_ANCHOR_URL): every N events, and hourly.
  const auditAnchors = new AuditAnchors(isAnchorLog(log) ? log : pino(loggerOptions(config)),
    config.audit.anchorUrl === undefined ? undefined : new HttpAnchorPublisher(config.audit.anchorUrl), () => clock.now(),
    { every: config.audit.anchorEvery, intervalMs: 3_600_000 })
  audit.onAppend((record) => { auditAnchors.afterAppend(record) })
  const localiser = new Localiser(loadCatalogues(LOCALES_DIR), { locale: config.defaultLocale, timeZone: config.defaultTimeZone },
    (message) => { log.error({ i18n: message }, 'message catalogue problem') })
  const hasher = new KeyedHasher(config.encryptionKey)
  const notifier = new EmailNotifier(
    config.mail.smtpUrl === undefined ? new OutboxMailTransport(outbox, clock) : new SmtpTransport(config.mail.smtpUrl, config.mail.from),
    config.webauthn.rpName,
    localiser
  )
  const sms = overrides.sms ?? smsSender(config, outbox, clock)
  const guard = new EnrollmentGuard(config.trustedNetworks, config.stepUpMs)
  // The engine is built below; method changes reach it through this late-bound hook.
  let engineRef: EnforcementEngine | undefined
  let engineStoreRef: EngineStore | undefined
  const lifecycle = new MethodLifecycle(methods, stores.notices, users, sessions, guard, hasher, notifier, audit, clock, config.publicUrl, log, {
    isBreakGlass: async (userId) => {
      const exemption = (await engineStoreRef?.facts(userId))?.exemption
      return exemption?.kind === 'break_glass' && (exemption.expiresAt === null || exemption.expiresAt > clock.now())
    },
    methodsChanged: async (userId) => { await engineRef?.refreshUser(userId) }
  })

  const local = new LocalProvider(users, methods, () => clock.now())
  const campaignStore = stores.campaigns
  const providers: Record<string, IdentityProvider> = { local }
  // Each directory's SDK is loaded only when the directory is configured (the CLI and a portal without it start faster).
  if (config.entra !== undefined) {
    const { EntraProvider } = await import('./providers/entra/provider.ts')
    const entraStore = stores.entraPortal
    providers.entra = new EntraProvider(config.entra, {
      now: () => clock.now(),
      // Entra campaigns name groups by object id; their members are read on each sync.
      campaignGroupIds: async () => (await campaignStore.list()).filter((c) => c.targetKind === 'group' && c.targetValue !== null).map((c) => c.targetValue!),
      // What per-user MFA was before the first flip, so relax restores exactly that, also after a restart.
      records: stores.enforcementRecords,
      // Disabled users are missing from the registration report: what the portal already read for them is reused.
      disabledUsers: (ids) => entraStore.disabledUserRecords(ids),
      // Warnings for the operator (a campaign group gone from Entra, a method name the portal does not know).
      log: {
        warn: (fields, message) => {
          if ('warn' in log) (log as { warn(f: object, m: string): void }).warn(fields, message)
          else log.error(fields, message)
        }
      }
    })
  }
  if (config.aws !== undefined) {
    const { AwsIamProvider } = await import('./providers/aws/provider.ts')
    providers.aws = new AwsIamProvider(config.aws, { clock })
  }
  Object.assign(providers, overrides.providers)
  const baseEngineStore = stores.engine
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
  const rollout = new RolloutGuard(stores.rollout, engine, audit, clock, notifier, () => users.listByRole('admin'),
    (campaignId) => new URL(`/admin/campaigns/${encodeURIComponent(campaignId)}`, config.publicUrl).href)
  engine.guardSweepsWith(rollout)
  // Arming reads the due AWS users' access keys (issue #14 item 11); the adapter is looked up on use, so tests may swap it.
  const campaignAccessKeys = new CampaignAccessKeys(engine, users, () => {
    const aws = providers.aws
    return aws !== undefined && 'activeAccessKeys' in aws ? aws as unknown as AccessKeySource : undefined
  })
  const campaigns = new CampaignService(campaignStore, engine, audit, clock, campaignAccessKeys)
  const passes = new AccessPassService(stores.accessPasses, users, hasher, regulator, audit, clock)
  // Approved requests are carried out by the services that also make the requests (late-bound: built just below).
  const approvals: ApprovalService = new ApprovalService(stores.approvals, users, audit, notifier, clock, config.twoPersonRule, config.publicUrl, () => ({
    pass: async (request, approver) => await helpdesk.issueApprovedPass(request, approver),
    reset: async (request, approver) => await helpdesk.resetApproved(request, approver),
    invitation: async (request, approver) => await invitations.issueApproved(request, approver)
  }))
  const recoveryCodes = new RecoveryCodeService(stores.recoveryCodes, hasher, regulator, notifier, audit, clock, log, {
    notices: stores.recoveryNotices,
    sessions,
    admins: () => users.listByRole('admin'),
    publicUrl: config.publicUrl,
    // Unused recovery codes may count toward a campaign's "one method plus recovery codes".
    codesChanged: async (userId) => { await engine.refreshUser(userId) }
  })
  const helpdesk: HelpdeskService = new HelpdeskService(users, methods, passes, campaigns, engine, audit, sessions, notifier, clock, { accessPass: config.accessPass, resetWindowMs: config.resetWindowMs }, approvals, providers, recoveryCodes)
  const invitations: InvitationService = new InvitationService(stores.invitations, users, hasher, notifier, audit, clock, config.publicUrl, approvals,
    { delivered: config.sandbox || config.mail.smtpUrl !== undefined })

  const services: Services = {
    config,
    clock,
    database,
    storage: stores.storage,
    users,
    userService: new UserService(users, audit, sessions, { run: async (work) => await stores.atomically(work) }),
    audit,
    auditAnchors,
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
    phone: new PhoneService(methods, pending, sms, new SmsSendLimits(regulator, hasher, audit, clock, config.smsLimits), hasher, guard, lifecycle, audit, clock, {
      source: config.phoneSource, defaultRegion: config.phoneDefaultRegion, organisation: config.webauthn.rpName, localiser
    }),
    passkeys: new PasskeyService(methods, challenges, users, guard, lifecycle, audit, clock, { ...config.webauthn, metadata: authenticatorMetadata(config, log, clock) }),
    passes,
    recoveryCodes,
    engineStore,
    engine,
    rollout,
    campaigns,
    providers,
    notifier,
    directorySync: new DirectorySyncService(stores.directorySync, engine, audit, clock, config.phoneDefaultRegion),
    driftChecks: new DriftCheckService(stores.driftChecks, engine, audit, clock),
    helpdesk,
    invitations,
    approvals,
    reminders: new ReminderService(stores.reminders, notifier, audit, clock, config.publicUrl.origin + '/', log),
    smsSunset: new SmsSunsetService(stores.smsSunset, engine, notifier, audit, clock, config.publicUrl.origin + '/', log),
    dashboard: stores.dashboard,
    localiser,
    stores,
    atomically: async (work) => await stores.atomically(work),
    close: async () => { await stores.close() },
    entra: undefined
  }
  // Entra's flows are built on the services themselves; with them come Microsoft's SDKs, loaded only when configured.
  if (config.entra !== undefined) services.entra = (await import('./wiring-entra.ts')).buildEntraPortal(services)
  return services
}

/**
 * The stores on DATABASE_URL's PostgreSQL (migrated under an advisory lock, so instances starting together apply
 * each migration once), or on the SQLite file in DATA_DIR.
 */
async function openStores (config: Config, deps: StoreDependencies, readOnly: boolean): Promise<{ stores: Stores, database: Database }> {
  if (config.databaseUrl !== undefined) {
    // Loaded only here: the PostgreSQL driver and its stores are not needed on the embedded SQLite default.
    const { postgresStores } = await import('./db/pg/stores.ts')
    const stores = await postgresStores(config.databaseUrl, deps, { applicationName: `mfa-rollout ${hostname()} ${process.pid}` })
    return { stores, database: noSqliteDatabase() }
  }
  const database = openDatabase(config.databaseFile, { readOnly })
  if (!readOnly) applyMigrations(database.db)
  return { stores: sqliteStores(database, deps), database }
}

/** Services.database where PostgreSQL is in use: any use says why it is not there. */
function noSqliteDatabase (): Database {
  return new Proxy({} as Database, {
    get (_target, key) {
      if (key === 'close') return () => {}
      throw new Error('this portal runs on PostgreSQL (DATABASE_URL): there is no SQLite database file to use')
    }
  })
}

function smsSender (config: Config, outbox: Outbox, clock: Clock): SmsSender {
  switch (config.sms.provider) {
    case 'twilio': return new TwilioSms(config.sms.twilio!)
    case 'aws-sns': return new SnsSms(config.sms.sns!)
    default: return new OutboxSms(outbox, clock)
  }
}

/**
 * The FIDO metadata that proves privileged users' authenticators (FIDO_MDS_FILE), verified in the background at
 * start. A file that fails verification, or is past its nextUpdate, is reported in the log; privileged users
 * cannot register a passkey under PRIVILEGED_AAGUIDS until a good file is in place and the portal restarted.
 */
function authenticatorMetadata (config: Config, log: Logger, clock: Clock): Promise<AuthenticatorMetadata> | undefined {
  const { metadataFile, metadataRoot } = config.webauthn
  if (metadataFile === undefined) return undefined
  const blob = readFileSync(metadataFile, 'utf8')
  // SimpleWebAuthn comes with it, loaded only where a metadata file is configured.
  const metadata = import('./domain/authenticator-metadata.ts').then(async ({ AuthenticatorMetadata }) => await AuthenticatorMetadata.fromBlob(blob, metadataRoot))
  metadata.then((loaded) => {
    if (loaded.nextUpdate < clock.now()) {
      log.error({ file: metadataFile, serial: loaded.serial, nextUpdate: loaded.nextUpdate.toISOString() }, 'FIDO_MDS_FILE is out of date: download a fresh BLOB from https://mds3.fidoalliance.org/ and restart')
    }
  }, (err: unknown) => {
    log.error({ file: metadataFile, err: (err as Error).message, cause: ((err as Error).cause as Error | undefined)?.message }, 'FIDO_MDS_FILE could not be verified, so privileged users cannot register passkeys: replace it with a BLOB from https://mds3.fidoalliance.org/ and restart')
  })
  return metadata
}

function isAnchorLog (log: object): log is AnchorLog {
  return typeof (log as Partial<AnchorLog>).info === 'function' && typeof (log as Partial<AnchorLog>).warn === 'function'
}
