import type { ApiTokenStore } from '../../domain/api-tokens.ts'
import type { ApprovalStore } from '../../domain/approvals.ts'
import type { AuditStore } from '../../domain/audit.ts'
import type { CampaignStore } from '../../domain/campaigns.ts'
import type { ComplianceStore } from '../../domain/compliance.ts'
import type { DashboardStore } from '../../domain/dashboard.ts'
import type { DirectoryPhoneStore } from '../../domain/directory-phones.ts'
import type { DirectorySyncStore } from '../../domain/directory-sync.ts'
import type { DriftCheckStore } from '../../domain/drift-checks.ts'
import type { EngineStore } from '../../domain/engine.ts'
import type { InvitationStore } from '../../domain/invitations.ts'
import type { MethodStore } from '../../domain/methods.ts'
import type { EnforcementRecords } from '../../domain/provider.ts'
import type { RecoveryCodeStore, RecoveryNoticeStore } from '../../domain/recovery-codes.ts'
import type { ReminderStore } from '../../domain/reminders.ts'
import type { RolloutStore } from '../../domain/rollout-guard.ts'
import type { SmsSunsetStore } from '../../domain/sms-sunset.ts'
import type { UserRefResolver } from '../../domain/user-refs.ts'
import type { SessionStore, UserStore } from '../../domain/users.ts'
import type { ProviderEnrollmentStore } from '../../domain/virtual-mfa-enrollment.ts'
import type { EntraPortalRows, Stores, StoreDependencies } from '../stores.ts'
import { PgAccess } from './access.ts'
import { PgApiTokenStore } from './api-tokens.ts'
import { PgApprovalStore } from './approvals.ts'
import { PgAuditLog } from './audit.ts'
import { PgCampaignStore } from './campaigns.ts'
import { PgComplianceStore } from './compliance.ts'
import { openPostgres, type PostgresOptions } from './connection.ts'
import { PgDashboardStore } from './dashboard.ts'
import { PgDirectoryPhoneStore } from './directory-phones.ts'
import { PgDirectorySyncStore } from './directory-sync.ts'
import { PgDriftCheckStore } from './drift-checks.ts'
import { PgEnforcementRecords } from './enforcement-records.ts'
import { PgEngineStore } from './engine.ts'
import { PgAccessPassStore, PgChallengeStore, PgNoticeStore, PgOutbox } from './enrollment-stores.ts'
import { PgEntraPortalStore } from './entra-portal.ts'
import { PgInvitationStore } from './invitations.ts'
import { PgMethodStore } from './methods.ts'
import { applyPgMigrations } from './migrate.ts'
import { pgDatabaseReadiness } from './migration-status.ts'
import { PgPendingStore } from './pending.ts'
import { PgProviderEnrollmentStore } from './provider-enrollments.ts'
import { PgRecoveryNoticeStore } from './recovery-code-notices.ts'
import { PgRecoveryCodeStore } from './recovery-codes.ts'
import { PgReminderStore } from './reminders.ts'
import { PgRolloutStore } from './rollout.ts'
import { PgSessionStore } from './sessions.ts'
import { PgSmsSunsetStore } from './sms-sunset.ts'
import { PgStorageHealth } from './storage-health.ts'
import { PgThrottleStore } from './throttles.ts'
import { PgUserRefResolver } from './user-refs.ts'
import { PgUserStore } from './users.ts'

/**
 * The PostgreSQL stores of one instance: opens a pool on the URL, applies pending migrations (instances starting
 * together queue on the migration lock) and builds every store on one PgAccess, so `atomically` spans them all.
 * Closing the bundle ends the pool.
 */
export async function postgresStores (url: string, deps: StoreDependencies, options: PostgresOptions = {}): Promise<Stores> {
  const { sealer, clock, keys, sessionTimeouts } = deps
  const database = await openPostgres(url, options)
  try {
    await applyPgMigrations(database)
  } catch (err) {
    await database.close()
    throw err
  }
  const access = new PgAccess(database.db)
  const campaigns = new PgCampaignStore(access)
  return {
    dialect: 'postgresql',
    users: new PgUserStore(access, clock) as unknown as UserStore, // TODO(#18): port still synchronous
    audit: new PgAuditLog(access, clock, keys) as unknown as AuditStore, // TODO(#18): port still synchronous
    throttles: new PgThrottleStore(access),
    sessions: new PgSessionStore(access, clock, sessionTimeouts) as unknown as SessionStore, // TODO(#18): port still synchronous
    methods: new PgMethodStore(access, sealer, clock) as unknown as MethodStore, // TODO(#18): port still synchronous
    pending: new PgPendingStore(access, sealer, clock),
    challenges: new PgChallengeStore(access),
    outbox: new PgOutbox(access),
    notices: new PgNoticeStore(access),
    accessPasses: new PgAccessPassStore(access),
    campaigns: campaigns as unknown as CampaignStore, // TODO(#18): port still synchronous
    engine: new PgEngineStore(access, campaigns) as unknown as EngineStore, // TODO(#18): port still synchronous
    enforcementRecords: new PgEnforcementRecords(access, clock) as unknown as EnforcementRecords, // TODO(#18): port still synchronous
    rollout: new PgRolloutStore(access) as unknown as RolloutStore, // TODO(#18): port still synchronous
    approvals: new PgApprovalStore(access) as unknown as ApprovalStore, // TODO(#18): port still synchronous
    recoveryCodes: new PgRecoveryCodeStore(access) as unknown as RecoveryCodeStore, // TODO(#18): port still synchronous
    recoveryNotices: new PgRecoveryNoticeStore(access) as unknown as RecoveryNoticeStore, // TODO(#18): port still synchronous
    invitations: new PgInvitationStore(access) as unknown as InvitationStore, // TODO(#18): port still synchronous
    directorySync: new PgDirectorySyncStore(access) as unknown as DirectorySyncStore, // TODO(#18): port still synchronous
    driftChecks: new PgDriftCheckStore(access) as unknown as DriftCheckStore, // TODO(#18): port still synchronous
    reminders: new PgReminderStore(access) as unknown as ReminderStore, // TODO(#18): port still synchronous
    smsSunset: new PgSmsSunsetStore(access) as unknown as SmsSunsetStore, // TODO(#18): port still synchronous
    dashboard: new PgDashboardStore(access) as unknown as DashboardStore, // TODO(#18): port still synchronous
    entraPortal: new PgEntraPortalStore(access, sealer, clock) as unknown as EntraPortalRows, // TODO(#18): port still synchronous
    providerEnrollments: new PgProviderEnrollmentStore(access, sealer, clock) as unknown as ProviderEnrollmentStore, // TODO(#18): port still synchronous
    userRefs: new PgUserRefResolver(access) as unknown as UserRefResolver, // TODO(#18): port still synchronous
    apiTokens: new PgApiTokenStore(access) as unknown as ApiTokenStore, // TODO(#18): port still synchronous
    directoryPhones: new PgDirectoryPhoneStore(access, clock) as unknown as DirectoryPhoneStore, // TODO(#18): port still synchronous
    compliance: new PgComplianceStore(access) as unknown as ComplianceStore, // TODO(#18): port still synchronous
    storage: new PgStorageHealth(clock),
    atomically: async (work) => await access.transaction(work),
    readiness: async () => await pgDatabaseReadiness(database.db),
    close: async () => { await database.close() }
  }
}
