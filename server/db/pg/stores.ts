import type { Stores, StoreDependencies } from '../stores.ts'
import { PgAccess } from './access.ts'
import { postgresLeadership } from './leadership.ts'
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
import { QueueUpkeep } from './queue-upkeep.ts'
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
  const upkeep = new QueueUpkeep(database.db)
  return {
    dialect: 'postgresql',
    users: new PgUserStore(access, clock),
    audit: new PgAuditLog(access, clock, keys),
    throttles: new PgThrottleStore(access),
    sessions: new PgSessionStore(access, clock, sessionTimeouts),
    methods: new PgMethodStore(access, sealer, clock),
    pending: new PgPendingStore(access, sealer, clock),
    challenges: new PgChallengeStore(access),
    outbox: new PgOutbox(access),
    notices: new PgNoticeStore(access),
    accessPasses: new PgAccessPassStore(access),
    campaigns: campaigns,
    engine: new PgEngineStore(access, campaigns, upkeep),
    enforcementRecords: new PgEnforcementRecords(access, clock),
    rollout: new PgRolloutStore(access),
    approvals: new PgApprovalStore(access),
    recoveryCodes: new PgRecoveryCodeStore(access),
    recoveryNotices: new PgRecoveryNoticeStore(access),
    invitations: new PgInvitationStore(access),
    directorySync: new PgDirectorySyncStore(access),
    driftChecks: new PgDriftCheckStore(access),
    reminders: new PgReminderStore(access),
    smsSunset: new PgSmsSunsetStore(access),
    dashboard: new PgDashboardStore(access),
    entraPortal: new PgEntraPortalStore(access, sealer, clock),
    providerEnrollments: new PgProviderEnrollmentStore(access, sealer, clock),
    userRefs: new PgUserRefResolver(access),
    apiTokens: new PgApiTokenStore(access),
    directoryPhones: new PgDirectoryPhoneStore(access, clock),
    compliance: new PgComplianceStore(access),
    storage: new PgStorageHealth(database.db, clock),
    atomically: async (work) => await access.transaction(work),
    leadership: (instance, retryMs, log) => postgresLeadership(database.pool, instance, retryMs, log),
    readiness: async () => await pgDatabaseReadiness(database.db),
    close: async () => { await upkeep.settled(); await database.close() }
  }
}
