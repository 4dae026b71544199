import { sql } from 'drizzle-orm'
import { bigint, boolean, index, integer, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core'

// The PostgreSQL twin of ../schema.ts: the same tables, columns, keys, indexes and TypeScript property names, so
// that one row object fits both dialects and a SQLite database copies across unchanged. What differs is only the
// column types: times (ms since the epoch) need 64 bits, SQLite's 0/1 booleans are real booleans here, JSON stays
// text. Keep the two files in step: test/postgres/schema.test.ts compares them.

/** Milliseconds since the epoch: past 2^31, so bigint, read back as a JavaScript number. */
const epochMs = (name: string) => bigint(name, { mode: 'number' })

/** SQLite's INTEGER PRIMARY KEY hands out the next id when none is given; an identity column does the same. */
const rowId = (name: string) => integer(name).primaryKey().generatedByDefaultAsIdentity()

/**
 * SQLite's hidden rowid, where the code orders or pages by it: PostgreSQL has no row number, so the twin carries
 * one. Only PostgreSQL has this column (the schema test and copy-database know the name: the copy fills it from
 * the rowid).
 */
export const ROW_NUMBER = 'seq'
const rowNumber = () => bigint(ROW_NUMBER, { mode: 'number' }).notNull().generatedByDefaultAsIdentity()

export const users = pgTable('users', {
  id: text('id').primaryKey(),
  email: text('email').notNull(),
  displayName: text('display_name').notNull(),
  role: text('role', { enum: ['user', 'helpdesk', 'admin'] }).notNull().default('user'),
  passwordHash: text('password_hash'),
  phone: text('phone'),
  privileged: boolean('privileged').notNull().default(false),
  provider: text('provider').notNull().default('local'),
  disabled: boolean('disabled').notNull().default(false),
  enforcedAt: epochMs('enforced_at'),
  externalId: text('external_id'),
  providerMethods: text('provider_methods').notNull().default('[]'),
  providerAttributes: text('provider_attributes').notNull().default('{}'),
  syncedAt: epochMs('synced_at'),
  driftFlaggedAt: epochMs('drift_flagged_at'),
  reenrollUntil: epochMs('reenroll_until'),
  firstSeenAt: epochMs('first_seen_at').notNull(),
  directoryCreatedAt: epochMs('directory_created_at'),
  locale: text('locale'),
  timeZone: text('time_zone'),
  createdAt: epochMs('created_at').notNull(),
  updatedAt: epochMs('updated_at').notNull()
}, (t) => [
  uniqueIndex('users_email_unique').on(t.email),
  uniqueIndex('users_provider_external').on(t.provider, t.externalId)
])

export const userGroups = pgTable('user_groups', {
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  groupName: text('group_name').notNull()
}, (t) => [
  primaryKey({ columns: [t.userId, t.groupName] }),
  index('user_groups_group').on(t.groupName)
])

export const sessions = pgTable('sessions', {
  sid: text('sid').primaryKey(),
  userId: text('user_id'),
  data: text('data').notNull(),
  expiresAt: epochMs('expires_at').notNull()
}, (t) => [
  index('sessions_expires').on(t.expiresAt),
  index('sessions_user').on(t.userId)
])

export const throttles = pgTable('throttles', {
  key: text('key').primaryKey(),
  failures: integer('failures').notNull(),
  windowStartedAt: epochMs('window_started_at').notNull(),
  lockedUntil: epochMs('locked_until')
})

// Append-only (a trigger in migrations-pg refuses UPDATE and DELETE); each row hashes the one before it.
export const auditEvents = pgTable('audit_events', {
  id: rowId('id'),
  at: text('at').notNull(),
  action: text('action').notNull(),
  actorId: text('actor_id'),
  actorLabel: text('actor_label'),
  subjectUserId: text('subject_user_id'),
  details: text('details').notNull().default(sql`'{}'`),
  ip: text('ip'),
  userAgent: text('user_agent'),
  prevHash: text('prev_hash').notNull(),
  hash: text('hash').notNull()
}, (t) => [
  index('audit_events_subject').on(t.subjectUserId, t.id),
  index('audit_events_action').on(t.action, t.id)
])

// ---- Enrollment ----

export const authMethods = pgTable('auth_methods', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['passkey', 'totp', 'phone'] }).notNull(),
  name: text('name').notNull(),
  createdAt: epochMs('created_at').notNull(),
  lastUsedAt: epochMs('last_used_at'),
  credentialId: text('credential_id'),
  publicKey: text('public_key'),
  // A WebAuthn signature counter is an unsigned 32-bit number: past integer's 2^31 - 1.
  signCount: bigint('sign_count', { mode: 'number' }),
  transports: text('transports'),
  aaguid: text('aaguid'),
  backedUp: boolean('backed_up'),
  secretSealed: text('secret_sealed'),
  lastUsedStep: integer('last_used_step'),
  phone: text('phone')
}, (t) => [
  index('auth_methods_user').on(t.userId),
  uniqueIndex('auth_methods_credential').on(t.credentialId)
])

export const webauthnChallenges = pgTable('webauthn_challenges', {
  id: text('id').primaryKey(),
  userId: text('user_id'),
  purpose: text('purpose', { enum: ['register', 'authenticate', 'step_up'] }).notNull(),
  challenge: text('challenge').notNull(),
  expiresAt: epochMs('expires_at').notNull(),
  consumedAt: epochMs('consumed_at')
}, (t) => [
  index('webauthn_challenges_expires').on(t.expiresAt)
])

export const pendingEnrollments = pgTable('pending_enrollments', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['totp', 'phone', 'step_up_phone'] }).notNull(),
  secretSealed: text('secret_sealed'),
  phone: text('phone'),
  codeHash: text('code_hash'),
  attempts: integer('attempts').notNull().default(0),
  sentAt: epochMs('sent_at'),
  expiresAt: epochMs('expires_at').notNull(),
  createdAt: epochMs('created_at').notNull()
}, (t) => [
  index('pending_enrollments_user').on(t.userId, t.kind)
])

export const smsSends = pgTable('sms_sends', {
  id: rowId('id'),
  userId: text('user_id').notNull(),
  phone: text('phone').notNull(),
  sentAt: epochMs('sent_at').notNull()
}, (t) => [
  index('sms_sends_user').on(t.userId, t.sentAt)
])

export const accessPasses = pgTable('access_passes', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  passHash: text('pass_hash').notNull(),
  oneTime: boolean('one_time').notNull(),
  expiresAt: epochMs('expires_at').notNull(),
  usedAt: epochMs('used_at'),
  revokedAt: epochMs('revoked_at'),
  createdBy: text('created_by'),
  createdAt: epochMs('created_at').notNull()
}, (t) => [
  index('access_passes_user').on(t.userId)
])

export const methodNotices = pgTable('method_notices', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  methodId: text('method_id').notNull(),
  methodName: text('method_name').notNull(),
  change: text('change', { enum: ['added', 'removed'] }).notNull(),
  tokenHash: text('token_hash').notNull(),
  expiresAt: epochMs('expires_at').notNull(),
  usedAt: epochMs('used_at')
}, (t) => [
  uniqueIndex('method_notices_token').on(t.tokenHash)
])

export const outbox = pgTable('outbox', {
  id: rowId('id'),
  channel: text('channel', { enum: ['email', 'sms'] }).notNull(),
  recipient: text('recipient').notNull(),
  subject: text('subject'),
  bodyText: text('body_text').notNull(),
  bodyHtml: text('body_html'),
  createdAt: epochMs('created_at').notNull()
}, (t) => [
  index('outbox_created').on(t.createdAt)
])

// ---- Campaigns and the enforcement engine ----

export const campaigns = pgTable('campaigns', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  targetKind: text('target_kind', { enum: ['all', 'group', 'privileged', 'provider'] }).notNull(),
  targetValue: text('target_value'),
  startsAt: epochMs('starts_at').notNull(),
  deadline: epochMs('deadline').notNull(),
  privilegedDeadline: epochMs('privileged_deadline'),
  newUserWindowDays: integer('new_user_window_days').notNull(),
  reminderOffsets: text('reminder_offsets').notNull(),
  maxExtensionDays: integer('max_extension_days').notNull(),
  smsPolicy: text('sms_policy', { enum: ['counts', 'weak', 'excluded'] }).notNull().default('counts'),
  privilegedMethods: text('privileged_methods', { enum: ['phishing_resistant', 'any'] }).notNull().default('phishing_resistant'),
  softBlockDays: integer('soft_block_days'),
  driftPolicy: text('drift_policy', { enum: ['reapply', 'flag'] }).notNull().default('reapply'),
  awsPolicyVariant: text('aws_policy_variant', { enum: ['console_and_api', 'console_only'] }).notNull().default('console_and_api'),
  methodsRequired: text('methods_required', { enum: ['one', 'two', 'one_plus_recovery'] }).notNull().default('one'),
  smsSunsetAt: epochMs('sms_sunset_at'),
  smsAfterSunset: text('sms_after_sunset', { enum: ['weak', 'excluded'] }).notNull().default('excluded'),
  smsSunsetGraceDays: integer('sms_sunset_grace_days').notNull().default(30),
  waves: text('waves'),
  breakerPassesPer100: integer('breaker_passes_per_100').notNull().default(15),
  breakerFailurePercent: integer('breaker_failure_percent').notNull().default(20),
  breakerNotMePer100: integer('breaker_not_me_per_100').notNull().default(3),
  breakerMinFlips: integer('breaker_min_flips').notNull().default(10),
  accessKeysReviewedAt: epochMs('access_keys_reviewed_at'),
  accessKeysReviewedBy: text('access_keys_reviewed_by'),
  accessKeysReview: text('access_keys_review'),
  armedAt: epochMs('armed_at'),
  armedBy: text('armed_by'),
  createdBy: text('created_by'),
  createdAt: epochMs('created_at').notNull(),
  updatedAt: epochMs('updated_at').notNull(),
  archivedAt: epochMs('archived_at')
})

export const exemptions = pgTable('exemptions', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['break_glass', 'service_account', 'other'] }).notNull(),
  reason: text('reason').notNull(),
  owner: text('owner').notNull(),
  expiresAt: epochMs('expires_at'),
  createdBy: text('created_by'),
  createdAt: epochMs('created_at').notNull(),
  revokedAt: epochMs('revoked_at')
}, (t) => [
  index('exemptions_user').on(t.userId)
])

export const extensions = pgTable('extensions', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  days: integer('days').notNull(),
  reason: text('reason').notNull(),
  approvedBy: text('approved_by'),
  createdAt: epochMs('created_at').notNull()
}, (t) => [
  index('extensions_user').on(t.userId)
])

export const userStates = pgTable('user_states', {
  userId: text('user_id').primaryKey().references(() => users.id, { onDelete: 'cascade' }),
  state: text('state', { enum: ['exempt', 'not_targeted', 'pending', 'enrolled', 'overdue', 'enforced', 'attention'] }).notNull(),
  reason: text('reason').notNull(),
  reasonWords: text('reason_words'),
  deadline: epochMs('deadline'),
  campaignId: text('campaign_id'),
  desired: text('desired', { enum: ['enforce', 'relax'] }),
  deadlineVersion: integer('deadline_version').notNull().default(0),
  softBlockAt: epochMs('soft_block_at'),
  wave: integer('wave'),
  updatedAt: epochMs('updated_at').notNull(),
  // The order users were first assessed in: the dashboard's lists page on it, as SQLite's do on the rowid.
  seq: rowNumber()
}, (t) => [
  // As in SQLite's schema: the due query's keyset order, then campaign_id for the counts by campaign.
  index('user_states_desired').on(t.desired, t.deadline, t.userId, t.campaignId),
  index('user_states_state').on(t.state, t.seq)
])

export const stateTransitions = pgTable('state_transitions', {
  id: rowId('id'),
  userId: text('user_id').notNull(),
  fromState: text('from_state'),
  toState: text('to_state').notNull(),
  reason: text('reason').notNull(),
  at: epochMs('at').notNull()
}, (t) => [
  index('state_transitions_user').on(t.userId, t.id)
])

export const enforcementJobs = pgTable('enforcement_jobs', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  action: text('action', { enum: ['enforce', 'relax'] }).notNull(),
  deadlineVersion: integer('deadline_version').notNull(),
  status: text('status', { enum: ['queued', 'running', 'done', 'failed', 'superseded'] }).notNull(),
  attempts: integer('attempts').notNull().default(0),
  nextAttemptAt: epochMs('next_attempt_at').notNull(),
  leaseOwner: text('lease_owner'),
  leaseExpiresAt: epochMs('lease_expires_at'),
  lastError: text('last_error'),
  createdAt: epochMs('created_at').notNull(),
  updatedAt: epochMs('updated_at').notNull()
}, (t) => [
  uniqueIndex('enforcement_jobs_key').on(t.userId, t.action, t.deadlineVersion),
  index('enforcement_jobs_ready').on(t.status, t.nextAttemptAt)
])

export const remindersSent = pgTable('reminders_sent', {
  userId: text('user_id').notNull(),
  campaignId: text('campaign_id').notNull(),
  offsetDays: integer('offset_days').notNull(),
  sentAt: epochMs('sent_at').notNull()
}, (t) => [
  primaryKey({ columns: [t.userId, t.campaignId, t.offsetDays] })
])

// ---- Consoles, API and directory providers ----

export const apiTokens = pgTable('api_tokens', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  tokenHash: text('token_hash').notNull(),
  scopes: text('scopes').notNull(),
  createdBy: text('created_by'),
  createdAt: epochMs('created_at').notNull(),
  expiresAt: epochMs('expires_at'),
  lastUsedAt: epochMs('last_used_at'),
  revokedAt: epochMs('revoked_at')
}, (t) => [
  uniqueIndex('api_tokens_hash').on(t.tokenHash)
])

export const invitations = pgTable('invitations', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  tokenHash: text('token_hash').notNull(),
  createdBy: text('created_by'),
  createdAt: epochMs('created_at').notNull(),
  expiresAt: epochMs('expires_at').notNull(),
  usedAt: epochMs('used_at')
}, (t) => [
  uniqueIndex('invitations_token').on(t.tokenHash),
  index('invitations_user').on(t.userId)
])

export const providerEnrollments = pgTable('provider_enrollments', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  provider: text('provider').notNull(),
  kind: text('kind').notNull(),
  deviceId: text('device_id'),
  secretSealed: text('secret_sealed'),
  attempts: integer('attempts').notNull().default(0),
  createdAt: epochMs('created_at').notNull(),
  expiresAt: epochMs('expires_at').notNull(),
  completedAt: epochMs('completed_at')
}, (t) => [
  index('provider_enrollments_user').on(t.userId),
  index('provider_enrollments_expires').on(t.expiresAt)
])

export const directorySyncs = pgTable('directory_syncs', {
  id: rowId('id'),
  provider: text('provider').notNull(),
  startedAt: epochMs('started_at').notNull(),
  finishedAt: epochMs('finished_at'),
  status: text('status', { enum: ['running', 'done', 'failed'] }).notNull(),
  seen: integer('seen').notNull().default(0),
  created: integer('created').notNull().default(0),
  updated: integer('updated').notNull().default(0),
  skipped: integer('skipped').notNull().default(0),
  registrationSource: text('registration_source'),
  error: text('error'),
  adopted: text('adopted').notNull().default('[]'),
  conflicts: text('conflicts').notNull().default('[]')
}, (t) => [
  index('directory_syncs_provider').on(t.provider, t.id)
])

export const rolloutSnapshots = pgTable('rollout_snapshots', {
  day: text('day').primaryKey(),
  takenAt: epochMs('taken_at').notNull(),
  counts: text('counts').notNull()
})

// ---- Two-person rule ----

export const approvalRequests = pgTable('approval_requests', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['pass', 'reset', 'invitation'] }).notNull(),
  options: text('options').notNull().default('{}'),
  reason: text('reason').notNull(),
  requestedBy: text('requested_by').notNull().references(() => users.id),
  requestedAt: epochMs('requested_at').notNull(),
  expiresAt: epochMs('expires_at').notNull(),
  status: text('status', { enum: ['pending', 'approved', 'refused', 'withdrawn', 'expired'] }).notNull().default('pending'),
  decidedBy: text('decided_by').references(() => users.id),
  decidedAt: epochMs('decided_at')
}, (t) => [
  // One waiting request per person and kind: a second one would be approved twice over.
  uniqueIndex('approval_requests_one_pending').on(t.userId, t.kind).where(sql`${t.status} = 'pending'`),
  index('approval_requests_status').on(t.status, t.expiresAt),
  index('approval_requests_user').on(t.userId, t.requestedAt)
])

// ---- Truthful states ----

export const directoryEnforcementRecords = pgTable('directory_enforcement_records', {
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  provider: text('provider').notNull(),
  foundState: text('found_state').notNull(),
  setState: text('set_state').notNull(),
  recordedAt: epochMs('recorded_at').notNull(),
  updatedAt: epochMs('updated_at').notNull()
}, (t) => [
  primaryKey({ columns: [t.userId, t.provider] })
])

export const driftChecks = pgTable('drift_checks', {
  id: rowId('id'),
  startedAt: epochMs('started_at').notNull(),
  finishedAt: epochMs('finished_at').notNull(),
  checked: integer('checked').notNull(),
  drifted: integer('drifted').notNull(),
  unchecked: integer('unchecked').notNull(),
  error: text('error')
})

export const recoveryCodes = pgTable('recovery_codes', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  setId: text('set_id').notNull(),
  codeHash: text('code_hash').notNull(),
  createdAt: epochMs('created_at').notNull(),
  usedAt: epochMs('used_at'),
  voidedAt: epochMs('voided_at')
}, (t) => [
  index('recovery_codes_user').on(t.userId, t.codeHash)
])

export const smsSunsetRuns = pgTable('sms_sunset_runs', {
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  sunsetAt: epochMs('sunset_at').notNull(),
  appliedAt: epochMs('applied_at').notNull(),
  users: integer('users').notNull(),
  dropped: integer('dropped').notNull()
}, (t) => [
  primaryKey({ columns: [t.campaignId, t.sunsetAt] })
])

export const smsSunsetReminders = pgTable('sms_sunset_reminders', {
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  sunsetAt: epochMs('sunset_at').notNull(),
  offsetDays: integer('offset_days').notNull(),
  sentAt: epochMs('sent_at').notNull()
}, (t) => [
  primaryKey({ columns: [t.userId, t.campaignId, t.sunsetAt, t.offsetDays] })
])

export const recoveryCodeNotices = pgTable('recovery_code_notices', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  tokenHash: text('token_hash').notNull(),
  usedCodeAt: epochMs('used_code_at').notNull(),
  expiresAt: epochMs('expires_at').notNull(),
  usedAt: epochMs('used_at')
}, (t) => [
  uniqueIndex('recovery_code_notices_token').on(t.tokenHash)
])

export const campaignWaveStarts = pgTable('campaign_wave_starts', {
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  wave: integer('wave').notNull(),
  startedAt: epochMs('started_at').notNull(),
  startedBy: text('started_by')
}, (t) => [
  primaryKey({ columns: [t.campaignId, t.wave] })
])

export const campaignPauses = pgTable('campaign_pauses', {
  id: text('id').primaryKey(),
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  pausedAt: epochMs('paused_at').notNull(),
  signal: text('signal').notNull(),
  figures: text('figures').notNull(),
  resumedAt: epochMs('resumed_at'),
  resumedBy: text('resumed_by'),
  resumeReason: text('resume_reason')
}, (t) => [
  index('campaign_pauses_campaign').on(t.campaignId, t.pausedAt)
])

export const waveSnapshots = pgTable('wave_snapshots', {
  day: text('day').notNull(),
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  wave: integer('wave').notNull(),
  takenAt: epochMs('taken_at').notNull(),
  counts: text('counts').notNull()
}, (t) => [
  primaryKey({ columns: [t.campaignId, t.wave, t.day] })
])
