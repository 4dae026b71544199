import { sql } from 'drizzle-orm'
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'

// Times are stored as milliseconds since the epoch (integer) unless a column says otherwise.

export const users = sqliteTable('users', {
  id: text('id').primaryKey(),
  email: text('email').notNull(),
  displayName: text('display_name').notNull(),
  role: text('role', { enum: ['user', 'helpdesk', 'admin'] }).notNull().default('user'),
  passwordHash: text('password_hash'),
  phone: text('phone'),
  privileged: integer('privileged', { mode: 'boolean' }).notNull().default(false),
  provider: text('provider').notNull().default('local'),
  disabled: integer('disabled', { mode: 'boolean' }).notNull().default(false),
  /** When MFA became mandatory for this user (set by enforcement); null while optional. */
  enforcedAt: integer('enforced_at'),
  firstSeenAt: integer('first_seen_at').notNull(),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull()
}, (t) => [
  uniqueIndex('users_email_unique').on(t.email)
])

export const userGroups = sqliteTable('user_groups', {
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  groupName: text('group_name').notNull()
}, (t) => [
  primaryKey({ columns: [t.userId, t.groupName] }),
  index('user_groups_group').on(t.groupName)
])

export const sessions = sqliteTable('sessions', {
  sid: text('sid').primaryKey(),
  userId: text('user_id'),
  data: text('data').notNull(),
  expiresAt: integer('expires_at').notNull()
}, (t) => [
  index('sessions_expires').on(t.expiresAt),
  index('sessions_user').on(t.userId)
])

export const throttles = sqliteTable('throttles', {
  key: text('key').primaryKey(),
  failures: integer('failures').notNull(),
  windowStartedAt: integer('window_started_at').notNull(),
  lockedUntil: integer('locked_until')
})

// Append-only (triggers in the migrations refuse UPDATE and DELETE); each row hashes the one before it.
export const auditEvents = sqliteTable('audit_events', {
  id: integer('id').primaryKey(),
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

// ---- Enrollment (issue: self-service enrollment) ----

/** Every second factor a user holds in the portal; kind-specific columns are null for other kinds. */
export const authMethods = sqliteTable('auth_methods', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['passkey', 'totp', 'phone'] }).notNull(),
  name: text('name').notNull(),
  createdAt: integer('created_at').notNull(),
  lastUsedAt: integer('last_used_at'),
  // passkey
  credentialId: text('credential_id'),
  publicKey: text('public_key'),
  signCount: integer('sign_count'),
  transports: text('transports'),
  aaguid: text('aaguid'),
  backedUp: integer('backed_up', { mode: 'boolean' }),
  // totp: the secret sealed with AES-256-GCM, bound to this row's id
  secretSealed: text('secret_sealed'),
  lastUsedStep: integer('last_used_step'),
  // phone (E.164)
  phone: text('phone')
}, (t) => [
  index('auth_methods_user').on(t.userId),
  uniqueIndex('auth_methods_credential').on(t.credentialId)
])

/** WebAuthn challenges: single use (claimed by a conditional UPDATE), short-lived. */
export const webauthnChallenges = sqliteTable('webauthn_challenges', {
  id: text('id').primaryKey(),
  userId: text('user_id'),
  purpose: text('purpose', { enum: ['register', 'authenticate', 'step_up'] }).notNull(),
  challenge: text('challenge').notNull(),
  expiresAt: integer('expires_at').notNull(),
  consumedAt: integer('consumed_at')
}, (t) => [
  index('webauthn_challenges_expires').on(t.expiresAt)
])

/** An authenticator-app or phone enrollment in progress: the secret/code waits here until proven. */
export const pendingEnrollments = sqliteTable('pending_enrollments', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['totp', 'phone', 'step_up_phone'] }).notNull(),
  secretSealed: text('secret_sealed'),
  phone: text('phone'),
  codeHash: text('code_hash'),
  attempts: integer('attempts').notNull().default(0),
  sentAt: integer('sent_at'),
  expiresAt: integer('expires_at').notNull(),
  createdAt: integer('created_at').notNull()
}, (t) => [
  index('pending_enrollments_user').on(t.userId, t.kind)
])

/** Text messages sent, one row per send, for the resend throttle (at most N per hour). */
export const smsSends = sqliteTable('sms_sends', {
  id: integer('id').primaryKey(),
  userId: text('user_id').notNull(),
  phone: text('phone').notNull(),
  sentAt: integer('sent_at').notNull()
}, (t) => [
  index('sms_sends_user').on(t.userId, t.sentAt)
])

/** Temporary access passes: stored only as a keyed hash; one active per user. */
export const accessPasses = sqliteTable('access_passes', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  passHash: text('pass_hash').notNull(),
  oneTime: integer('one_time', { mode: 'boolean' }).notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at'),
  revokedAt: integer('revoked_at'),
  createdBy: text('created_by'),
  createdAt: integer('created_at').notNull()
}, (t) => [
  index('access_passes_user').on(t.userId)
])

/** "This wasn't me" links sent with method-change emails: keyed hash of the token, single use. */
export const methodNotices = sqliteTable('method_notices', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  methodId: text('method_id').notNull(),
  methodName: text('method_name').notNull(),
  change: text('change', { enum: ['added', 'removed'] }).notNull(),
  tokenHash: text('token_hash').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at')
}, (t) => [
  uniqueIndex('method_notices_token').on(t.tokenHash)
])

/** Sandbox outbox: mail and text messages that were "sent" without a real transport; admins can read them. */
export const outbox = sqliteTable('outbox', {
  id: integer('id').primaryKey(),
  channel: text('channel', { enum: ['email', 'sms'] }).notNull(),
  recipient: text('recipient').notNull(),
  subject: text('subject'),
  bodyText: text('body_text').notNull(),
  bodyHtml: text('body_html'),
  createdAt: integer('created_at').notNull()
}, (t) => [
  index('outbox_created').on(t.createdAt)
])

// ---- Campaigns and the enforcement engine ----

export const campaigns = sqliteTable('campaigns', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  targetKind: text('target_kind', { enum: ['all', 'group', 'privileged', 'provider'] }).notNull(),
  targetValue: text('target_value'),
  startsAt: integer('starts_at').notNull(),
  deadline: integer('deadline').notNull(),
  privilegedDeadline: integer('privileged_deadline'),
  newUserWindowDays: integer('new_user_window_days').notNull(),
  /** JSON array of whole days before the deadline, e.g. [30,14,7,3,1]. */
  reminderOffsets: text('reminder_offsets').notNull(),
  maxExtensionDays: integer('max_extension_days').notNull(),
  smsCounts: integer('sms_counts', { mode: 'boolean' }).notNull(),
  softBlockDays: integer('soft_block_days'),
  /** Null while disarmed: deadlines and reminders run, nothing is flipped. */
  armedAt: integer('armed_at'),
  armedBy: text('armed_by'),
  createdBy: text('created_by'),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
  archivedAt: integer('archived_at')
})

export const exemptions = sqliteTable('exemptions', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['break_glass', 'service_account', 'other'] }).notNull(),
  reason: text('reason').notNull(),
  owner: text('owner').notNull(),
  expiresAt: integer('expires_at'),
  createdBy: text('created_by'),
  createdAt: integer('created_at').notNull(),
  revokedAt: integer('revoked_at')
}, (t) => [
  index('exemptions_user').on(t.userId)
])

export const extensions = sqliteTable('extensions', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  days: integer('days').notNull(),
  reason: text('reason').notNull(),
  approvedBy: text('approved_by'),
  createdAt: integer('created_at').notNull()
}, (t) => [
  index('extensions_user').on(t.userId)
])

/**
 * Each user's derived state and effective deadline, kept current when their inputs change, so the sweep plans
 * with one indexed range scan (desired action, deadline) instead of loading users.
 */
export const userStates = sqliteTable('user_states', {
  userId: text('user_id').primaryKey().references(() => users.id, { onDelete: 'cascade' }),
  state: text('state', { enum: ['exempt', 'not_targeted', 'pending', 'enrolled', 'overdue', 'enforced', 'attention'] }).notNull(),
  reason: text('reason').notNull(),
  deadline: integer('deadline'),
  campaignId: text('campaign_id'),
  /** What the engine should make true at the provider, or null. The sweep's index. */
  desired: text('desired', { enum: ['enforce', 'relax'] }),
  /** Bumped whenever the deadline or the desired action changes: jobs are keyed by it, so each change is a new job. */
  deadlineVersion: integer('deadline_version').notNull().default(0),
  updatedAt: integer('updated_at').notNull()
}, (t) => [
  index('user_states_desired').on(t.desired, t.deadline),
  index('user_states_state').on(t.state)
])

export const stateTransitions = sqliteTable('state_transitions', {
  id: integer('id').primaryKey(),
  userId: text('user_id').notNull(),
  fromState: text('from_state'),
  toState: text('to_state').notNull(),
  reason: text('reason').notNull(),
  at: integer('at').notNull()
}, (t) => [
  index('state_transitions_user').on(t.userId, t.id)
])

/** Durable work for the enforcement engine: one row per (user, action, deadline version). */
export const enforcementJobs = sqliteTable('enforcement_jobs', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  action: text('action', { enum: ['enforce', 'relax'] }).notNull(),
  deadlineVersion: integer('deadline_version').notNull(),
  status: text('status', { enum: ['queued', 'running', 'done', 'failed'] }).notNull(),
  attempts: integer('attempts').notNull().default(0),
  nextAttemptAt: integer('next_attempt_at').notNull(),
  leaseOwner: text('lease_owner'),
  leaseExpiresAt: integer('lease_expires_at'),
  lastError: text('last_error'),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull()
}, (t) => [
  uniqueIndex('enforcement_jobs_key').on(t.userId, t.action, t.deadlineVersion),
  index('enforcement_jobs_ready').on(t.status, t.nextAttemptAt)
])

/** One reminder per user, campaign and offset, whatever the number of sweeps: the primary key says so. */
export const remindersSent = sqliteTable('reminders_sent', {
  userId: text('user_id').notNull(),
  campaignId: text('campaign_id').notNull(),
  offsetDays: integer('offset_days').notNull(),
  sentAt: integer('sent_at').notNull()
}, (t) => [
  primaryKey({ columns: [t.userId, t.campaignId, t.offsetDays] })
])
