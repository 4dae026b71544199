import { soleLeader, type Leadership } from '../domain/leadership.ts'
import type { ApiTokenStore } from '../domain/api-tokens.ts'
import type { ApprovalStore } from '../domain/approvals.ts'
import type { AuditStore, ChainKeyring } from '../domain/audit.ts'
import type { CampaignStore } from '../domain/campaigns.ts'
import type { Clock } from '../domain/clock.ts'
import type { ComplianceStore } from '../domain/compliance.ts'
import type { DashboardStore } from '../domain/dashboard.ts'
import type { DirectoryPhoneStore } from '../domain/directory-phones.ts'
import type { DirectorySyncStore } from '../domain/directory-sync.ts'
import type { DriftCheckStore } from '../domain/drift-checks.ts'
import type { EngineStore } from '../domain/engine.ts'
import type { EntraEnrollmentStore } from '../domain/entra-enrollment.ts'
import type { EntraPhoneStore } from '../domain/entra-phones.ts'
import type { InvitationStore } from '../domain/invitations.ts'
import type { NoticeStore } from '../domain/method-lifecycle.ts'
import type { MethodStore } from '../domain/methods.ts'
import type { Outbox } from '../domain/notifications.ts'
import type { AccessPassStore } from '../domain/passes.ts'
import type { ChallengeStore } from '../domain/passkeys.ts'
import type { PendingStore } from '../domain/pending.ts'
import type { EnforcementRecords } from '../domain/provider.ts'
import type { RecoveryCodeStore, RecoveryNoticeStore } from '../domain/recovery-codes.ts'
import type { ThrottleRows } from '../domain/regulation.ts'
import type { ReminderStore } from '../domain/reminders.ts'
import type { RolloutStore } from '../domain/rollout-guard.ts'
import type { SmsSunsetStore } from '../domain/sms-sunset.ts'
import type { StorageMonitor } from '../domain/storage.ts'
import type { UserRefResolver } from '../domain/user-refs.ts'
import type { SessionStore, UserStore } from '../domain/users.ts'
import type { ProviderEnrollmentStore } from '../domain/virtual-mfa-enrollment.ts'
import { SqliteApiTokenStore } from './api-tokens.ts'
import { SqliteApprovalStore } from './approvals.ts'
import { SqliteAuditLog } from './audit.ts'
import { SqliteCampaignStore } from './campaigns.ts'
import { SqliteComplianceStore } from './compliance.ts'
import type { Database } from './connection.ts'
import { SqliteDashboardStore } from './dashboard.ts'
import { SqliteDirectoryPhoneStore } from './directory-phones.ts'
import { SqliteDirectorySyncStore } from './directory-sync.ts'
import { SqliteDriftCheckStore } from './drift-checks.ts'
import { SqliteEnforcementRecords } from './enforcement-records.ts'
import { SqliteEngineStore } from './engine.ts'
import { SqliteAccessPassStore, SqliteChallengeStore, SqliteNoticeStore, SqliteOutbox } from './enrollment-stores.ts'
import { SqliteEntraPortalStore } from './entra-portal.ts'
import { SqliteInvitationStore } from './invitations.ts'
import { SqliteMethodStore } from './methods.ts'
import { databaseReadiness, type MigrationStatus } from './migrate.ts'
import { SqlitePendingStore } from './pending.ts'
import { SqliteProviderEnrollmentStore } from './provider-enrollments.ts'
import { SqliteRecoveryNoticeStore } from './recovery-code-notices.ts'
import { SqliteRecoveryCodeStore } from './recovery-codes.ts'
import { SqliteReminderStore } from './reminders.ts'
import { SqliteRolloutStore } from './rollout.ts'
import type { Sealer } from './sealing.ts'
import { SqliteSessionStore } from './sessions.ts'
import { SqliteSmsSunsetStore } from './sms-sunset.ts'
import { StorageHealth } from './storage-health.ts'
import { SqliteThrottleStore } from './throttles.ts'
import { SqliteUserRefResolver } from './user-refs.ts'
import { SqliteUserStore } from './users.ts'

/**
 * The Entra portal's rows: its two ports, and the two look-ups the wiring hands on directly (the Entra adapter's
 * disabled users, Microsoft sign-in's object ids), which no port declares yet.
 */
export type EntraPortalRows = EntraEnrollmentStore & EntraPhoneStore & Pick<SqliteEntraPortalStore, 'disabledUserRecords' | 'userIdByObjectId'>

/** Every store of one portal instance on one database, whichever dialect: what the wiring builds services on. */
export interface Stores {
  readonly dialect: 'sqlite' | 'postgresql'
  users: UserStore
  audit: AuditStore
  throttles: ThrottleRows
  sessions: SessionStore
  methods: MethodStore
  pending: PendingStore
  challenges: ChallengeStore
  outbox: Outbox
  /** Method-change notices ("This wasn't me"). */
  notices: NoticeStore
  accessPasses: AccessPassStore
  campaigns: CampaignStore
  engine: EngineStore
  /** Per-user MFA as it was before the Entra adapter first enforced it. */
  enforcementRecords: EnforcementRecords
  rollout: RolloutStore
  approvals: ApprovalStore
  recoveryCodes: RecoveryCodeStore
  recoveryNotices: RecoveryNoticeStore
  invitations: InvitationStore
  directorySync: DirectorySyncStore
  driftChecks: DriftCheckStore
  reminders: ReminderStore
  smsSunset: SmsSunsetStore
  dashboard: DashboardStore
  entraPortal: EntraPortalRows
  /** AWS virtual MFA devices being enrolled. */
  providerEnrollments: ProviderEnrollmentStore
  userRefs: UserRefResolver
  apiTokens: ApiTokenStore
  directoryPhones: DirectoryPhoneStore
  compliance: ComplianceStore
  /** Failing writes and damage seen by requests, for /readyz and the log. */
  storage: StorageMonitor
  /** Runs work as one transaction across every store (all of it is written, or none). */
  atomically<T>(work: () => Promise<T>): Promise<T>
  /** Who runs the scheduler among the instances on this database (on SQLite: this one, always). */
  leadership(instance: string, retryMs: number, log: { warn(fields: object, message: string): void }): Leadership
  /** The database answers and every migration is applied; throws when it cannot be reached. */
  readiness(): Promise<MigrationStatus>
  close(): Promise<void>
}

/** What the stores need besides the database. */
export interface StoreDependencies {
  /** Seals secrets at rest (TOTP seeds, pending enrollments, Entra and AWS enrollment secrets). */
  sealer: Sealer
  clock: Clock
  /** Keys the audit chain's hashes. */
  keys: ChainKeyring
  sessionTimeouts: { idleMs: number, absoluteMs: number }
}

/** The SQLite stores on an open (and, unless read-only, migrated) database; closing the bundle closes the database. */
export function sqliteStores (database: Database, deps: StoreDependencies): Stores {
  const { sealer, clock, keys, sessionTimeouts } = deps
  const campaigns = new SqliteCampaignStore(database.access)
  return {
    dialect: 'sqlite',
    users: new SqliteUserStore(database.access, clock),
    audit: new SqliteAuditLog(database.access, clock, keys),
    throttles: new SqliteThrottleStore(database.access),
    sessions: new SqliteSessionStore(database.access, clock, sessionTimeouts),
    methods: new SqliteMethodStore(database.access, sealer, clock),
    pending: new SqlitePendingStore(database.access, sealer, clock),
    challenges: new SqliteChallengeStore(database.access),
    outbox: new SqliteOutbox(database.access),
    notices: new SqliteNoticeStore(database.access),
    accessPasses: new SqliteAccessPassStore(database.access),
    campaigns,
    engine: new SqliteEngineStore(database.access, campaigns),
    enforcementRecords: new SqliteEnforcementRecords(database.access, clock),
    rollout: new SqliteRolloutStore(database.access),
    approvals: new SqliteApprovalStore(database.access),
    recoveryCodes: new SqliteRecoveryCodeStore(database.access),
    recoveryNotices: new SqliteRecoveryNoticeStore(database.access),
    invitations: new SqliteInvitationStore(database.access),
    directorySync: new SqliteDirectorySyncStore(database.access),
    driftChecks: new SqliteDriftCheckStore(database.access),
    reminders: new SqliteReminderStore(database.access),
    smsSunset: new SqliteSmsSunsetStore(database.access),
    dashboard: new SqliteDashboardStore(database.access),
    entraPortal: new SqliteEntraPortalStore(database.access, sealer, clock),
    providerEnrollments: new SqliteProviderEnrollmentStore(database.access, sealer, clock),
    userRefs: new SqliteUserRefResolver(database.access),
    apiTokens: new SqliteApiTokenStore(database.access),
    directoryPhones: new SqliteDirectoryPhoneStore(database.access, clock),
    compliance: new SqliteComplianceStore(database.access),
    storage: new StorageHealth(database.sqlite, clock),
    atomically: async (work) => await database.access.transaction(work),
    leadership: (instance) => soleLeader(instance),
    readiness: async () => databaseReadiness(database.sqlite),
    close: async () => { database.close() }
  }
}
