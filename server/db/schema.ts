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
  /** The provider's stable id (Entra object id, IAM user name); null for local users. */
  externalId: text('external_id'),
  /** JSON array of method kinds the provider reports (synced), e.g. ["passkey","phone"]. */
  providerMethods: text('provider_methods').notNull().default('[]'),
  /** JSON object of provider facts shown to admins and used by policies (e.g. {"consolePassword":true}). */
  providerAttributes: text('provider_attributes').notNull().default('{}'),
  syncedAt: integer('synced_at'),
  /** Set when drift (enforcement switched off at the provider by hand) was found and the policy says flag only. */
  driftFlaggedAt: integer('drift_flagged_at'),
  /** After a helpdesk reset: until when the user may enroll a first method again from anywhere. */
  reenrollUntil: integer('reenroll_until'),
  firstSeenAt: integer('first_seen_at').notNull(),
  /** When the directory itself created the account (Entra createdDateTime, IAM CreateDate); null if it does not say. */
  directoryCreatedAt: integer('directory_created_at'),
  /** The language the user chose in the portal (e.g. 'de'); null: follow the browser's Accept-Language. */
  locale: text('locale'),
  /** The IANA time zone learned from the browser or chosen by the user (e.g. 'Europe/Berlin'); null: DEFAULT_TIME_ZONE. */
  timeZone: text('time_zone'),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull()
}, (t) => [
  uniqueIndex('users_email_unique').on(t.email),
  uniqueIndex('users_provider_external').on(t.provider, t.externalId)
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
  /** Whether a text-message phone qualifies: 'counts', 'weak' (qualifies, reported as weak) or 'excluded'. */
  smsPolicy: text('sms_policy', { enum: ['counts', 'weak', 'excluded'] }).notNull().default('counts'),
  /** What privileged users must hold: a phishing-resistant method (passkey/FIDO2) or any qualifying method. */
  privilegedMethods: text('privileged_methods', { enum: ['phishing_resistant', 'any'] }).notNull().default('phishing_resistant'),
  /** Days before the hard flip during which the portal insists on enrollment (null: no soft-block stage). */
  softBlockDays: integer('soft_block_days'),
  /** When enforcement is found switched off by hand: put it back ('reapply') or only flag it for an admin ('flag'). */
  driftPolicy: text('drift_policy', { enum: ['reapply', 'flag'] }).notNull().default('reapply'),
  /**
   * Which deny-unless-MFA policy AWS IAM users of this campaign get: 'console_and_api' (AWS's documented policy,
   * which also blocks long-term access keys) or 'console_only' (leaves requests signed with access keys alone).
   */
  awsPolicyVariant: text('aws_policy_variant', { enum: ['console_and_api', 'console_only'] }).notNull().default('console_and_api'),
  /** How many methods before a user counts as enrolled: 'one', 'two' (different kinds), or 'one_plus_recovery' (recovery codes, local users). */
  methodsRequired: text('methods_required', { enum: ['one', 'two', 'one_plus_recovery'] }).notNull().default('one'),
  /** Text messages count as sms_policy says until this moment, then as sms_after_sunset (null: no sunset). */
  smsSunsetAt: integer('sms_sunset_at'),
  smsAfterSunset: text('sms_after_sunset', { enum: ['weak', 'excluded'] }).notNull().default('excluded'),
  /** Grace period of the new deadline of users who drop below the policy at the sunset, counted from the sunset. */
  smsSunsetGraceDays: integer('sms_sunset_grace_days').notNull().default(30),
  /**
   * JSON wave plan (domain/waves.ts): { pilot: { kind: 'group', group } | { kind: 'share', percent }, offsetsDays: [..] };
   * null: one wave, everyone on the campaign's deadline.
   */
  waves: text('waves'),
  /** Breaker thresholds (domain/breaker.ts), over a rolling 24 hours: passes and resets per 100 users flipped, … */
  breakerPassesPer100: integer('breaker_passes_per_100').notNull().default(15),
  /** … enforcement failures as a percentage of attempts, … */
  breakerFailurePercent: integer('breaker_failure_percent').notNull().default(20),
  /** … "This wasn't me" reports per 100 users flipped; none counts until this many users were flipped in the window. */
  breakerNotMePer100: integer('breaker_not_me_per_100').notNull().default(3),
  breakerMinFlips: integer('breaker_min_flips').notNull().default(10),
  /** When an admin last confirmed the due AWS users' access keys (issue #14 item 11), and who. */
  accessKeysReviewedAt: integer('access_keys_reviewed_at'),
  accessKeysReviewedBy: text('access_keys_reviewed_by'),
  /** JSON { variant, keyIds }: the policy chosen then and the access key ids the admin saw. */
  accessKeysReview: text('access_keys_review'),
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
  /** Why, in English: for logs, the API and the record. */
  reason: text('reason').notNull(),
  /** Why, as catalogue keys and values (JSON, stored-words.ts), for pages in the reader's language; null: rows from before. */
  reasonWords: text('reason_words'),
  deadline: integer('deadline'),
  campaignId: text('campaign_id'),
  /** What the engine should make true at the provider, or null. The sweep's index. */
  desired: text('desired', { enum: ['enforce', 'relax'] }),
  /** Bumped whenever the deadline or the desired action changes: jobs are keyed by it, so each change is a new job. */
  deadlineVersion: integer('deadline_version').notNull().default(0),
  /** When the campaign's soft-block stage begins (the portal insists on enrollment); null without one. */
  softBlockAt: integer('soft_block_at'),
  /** The user's wave in their campaign (1 = the pilot); null when the campaign has no waves. */
  wave: integer('wave'),
  updatedAt: integer('updated_at').notNull()
}, (t) => [
  // user_id: the due query's keyset order (deadline, user_id) is the index's, so no batch sorts the due rows;
  // campaign_id too: the planner's counts by campaign read the index alone.
  index('user_states_desired').on(t.desired, t.deadline, t.userId, t.campaignId),
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
  status: text('status', { enum: ['queued', 'running', 'done', 'failed', 'superseded'] }).notNull(),
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

// ---- Consoles, API and directory providers ----

/** Automation API tokens: shown once, stored as a keyed hash, scoped. */
export const apiTokens = sqliteTable('api_tokens', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  tokenHash: text('token_hash').notNull(),
  /** JSON array of scopes, e.g. ["phones:write","status:read"]. */
  scopes: text('scopes').notNull(),
  createdBy: text('created_by'),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at'),
  lastUsedAt: integer('last_used_at'),
  revokedAt: integer('revoked_at')
}, (t) => [
  uniqueIndex('api_tokens_hash').on(t.tokenHash)
])

/** Sign-in invitations for users without a password or OIDC (IAM users): one time, hashed at rest. */
export const invitations = sqliteTable('invitations', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  tokenHash: text('token_hash').notNull(),
  createdBy: text('created_by'),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at')
}, (t) => [
  uniqueIndex('invitations_token').on(t.tokenHash),
  index('invitations_user').on(t.userId)
])

/** A method being set up at a provider (AWS virtual MFA device, Entra hardware OATH token) until proven or abandoned. */
export const providerEnrollments = sqliteTable('provider_enrollments', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  provider: text('provider').notNull(),
  kind: text('kind').notNull(),
  /** The provider's id for the device (MFA serial number / ARN, OATH token id). */
  deviceId: text('device_id'),
  /** The seed, sealed like TOTP secrets (bound to this row's id). */
  secretSealed: text('secret_sealed'),
  attempts: integer('attempts').notNull().default(0),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  completedAt: integer('completed_at')
}, (t) => [
  index('provider_enrollments_user').on(t.userId),
  index('provider_enrollments_expires').on(t.expiresAt)
])

/** One row per directory sync run: what was seen and where registration facts came from. */
export const directorySyncs = sqliteTable('directory_syncs', {
  id: integer('id').primaryKey(),
  provider: text('provider').notNull(),
  startedAt: integer('started_at').notNull(),
  finishedAt: integer('finished_at'),
  status: text('status', { enum: ['running', 'done', 'failed'] }).notNull(),
  seen: integer('seen').notNull().default(0),
  created: integer('created').notNull().default(0),
  updated: integer('updated').notNull().default(0),
  skipped: integer('skipped').notNull().default(0),
  /** e.g. 'userRegistrationDetails' or 'authentication/methods' (Entra), 'ListMFADevices' (AWS). */
  registrationSource: text('registration_source'),
  error: text('error'),
  /** JSON [{ name, email }]: portal accounts taken over by matching e-mail in this run (the first 100). */
  adopted: text('adopted').notNull().default('[]'),
  /** JSON [{ name, email, reason }]: directory users whose e-mail another account holds, synced without it (the first 100). */
  conflicts: text('conflicts').notNull().default('[]')
}, (t) => [
  index('directory_syncs_provider').on(t.provider, t.id)
])

/** Counts by state once a day, for the admin burn-down chart. */
export const rolloutSnapshots = sqliteTable('rollout_snapshots', {
  day: text('day').primaryKey(),
  takenAt: integer('taken_at').notNull(),
  /** JSON object: state -> count. */
  counts: text('counts').notNull()
})

// ---- Two-person rule (issue #12) ----

/**
 * Requests for a pass, reset or invitation on a privileged or staff account, waiting for a second administrator.
 * No secret is kept here: the pass is made only when the request is approved, and shown once to the approver.
 */
export const approvalRequests = sqliteTable('approval_requests', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['pass', 'reset', 'invitation'] }).notNull(),
  /** JSON object: the options the requester chose (pass lifetime, one time, pass with a reset). */
  options: text('options').notNull().default('{}'),
  reason: text('reason').notNull(),
  requestedBy: text('requested_by').notNull().references(() => users.id),
  requestedAt: integer('requested_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  status: text('status', { enum: ['pending', 'approved', 'refused', 'withdrawn', 'expired'] }).notNull().default('pending'),
  decidedBy: text('decided_by').references(() => users.id),
  decidedAt: integer('decided_at')
}, (t) => [
  // One waiting request per person and kind: a second one would be approved twice over.
  uniqueIndex('approval_requests_one_pending').on(t.userId, t.kind).where(sql`${t.status} = 'pending'`),
  index('approval_requests_status').on(t.status, t.expiresAt),
  index('approval_requests_user').on(t.userId, t.requestedAt)
])

// ---- Truthful states (issue #13) ----

/**
 * What the portal found at a directory before it first switched enforcement on for a user (e.g. Entra per-user MFA
 * `disabled`), and what it set: relaxing restores exactly the state found, and only while the state is still the
 * one the portal set (an administrator's own change is left alone).
 */
export const directoryEnforcementRecords = sqliteTable('directory_enforcement_records', {
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  provider: text('provider').notNull(),
  foundState: text('found_state').notNull(),
  setState: text('set_state').notNull(),
  recordedAt: integer('recorded_at').notNull(),
  updatedAt: integer('updated_at').notNull()
}, (t) => [
  primaryKey({ columns: [t.userId, t.provider] })
])

/** One row per drift check: how many enforced users were re-read, found switched off, or could not be read. */
export const driftChecks = sqliteTable('drift_checks', {
  id: integer('id').primaryKey(),
  startedAt: integer('started_at').notNull(),
  finishedAt: integer('finished_at').notNull(),
  checked: integer('checked').notNull(),
  drifted: integer('drifted').notNull(),
  unchecked: integer('unchecked').notNull(),
  /** The first provider error met, when some users could not be checked. */
  error: text('error')
})

/**
 * Recovery codes of portal accounts: ten per set, each stored only as a keyed hash (bound to the user), used at
 * most once. Generating a new set voids the old one.
 */
export const recoveryCodes = sqliteTable('recovery_codes', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  setId: text('set_id').notNull(),
  codeHash: text('code_hash').notNull(),
  createdAt: integer('created_at').notNull(),
  usedAt: integer('used_at'),
  voidedAt: integer('voided_at')
}, (t) => [
  index('recovery_codes_user').on(t.userId, t.codeHash)
])

/** A campaign's SMS sunset carried out: its users' states were re-derived on the date (once per sunset date). */
export const smsSunsetRuns = sqliteTable('sms_sunset_runs', {
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  sunsetAt: integer('sunset_at').notNull(),
  appliedAt: integer('applied_at').notNull(),
  /** Users whose state was re-derived, and how many of them dropped below the policy (a new deadline). */
  users: integer('users').notNull(),
  dropped: integer('dropped').notNull()
}, (t) => [
  primaryKey({ columns: [t.campaignId, t.sunsetAt] })
])

/** Reminders before an SMS sunset, at most one per user, campaign, sunset date and offset. */
export const smsSunsetReminders = sqliteTable('sms_sunset_reminders', {
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  sunsetAt: integer('sunset_at').notNull(),
  offsetDays: integer('offset_days').notNull(),
  sentAt: integer('sent_at').notNull()
}, (t) => [
  primaryKey({ columns: [t.userId, t.campaignId, t.sunsetAt, t.offsetDays] })
])

/** The "This wasn't me" link of a recovery-code e-mail: stored as a keyed hash, single use, expiring. */
export const recoveryCodeNotices = sqliteTable('recovery_code_notices', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  tokenHash: text('token_hash').notNull(),
  usedCodeAt: integer('used_code_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
  usedAt: integer('used_at')
}, (t) => [
  uniqueIndex('recovery_code_notices_token').on(t.tokenHash)
])

/** When each wave after the pilot started counting (domain/waves.ts): by the engine once the previous wave was done, or by an admin. */
export const campaignWaveStarts = sqliteTable('campaign_wave_starts', {
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  /** 2 for the wave after the pilot, and so on. */
  wave: integer('wave').notNull(),
  startedAt: integer('started_at').notNull(),
  /** The admin who started it by hand; null when the engine did. */
  startedBy: text('started_by')
}, (t) => [
  primaryKey({ columns: [t.campaignId, t.wave] })
])

/**
 * Every pause of a campaign by its breaker (domain/breaker.ts), never rewritten: resuming fills resumed_*, and the
 * completed pauses move the deadlines of users not yet flipped.
 */
export const campaignPauses = sqliteTable('campaign_pauses', {
  id: text('id').primaryKey(),
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  pausedAt: integer('paused_at').notNull(),
  /** Which threshold was passed: 'passes', 'failures' or 'not_me'. */
  signal: text('signal').notNull(),
  /** JSON: the figures of the rolling window when it tripped, with the thresholds. */
  figures: text('figures').notNull(),
  resumedAt: integer('resumed_at'),
  resumedBy: text('resumed_by'),
  resumeReason: text('resume_reason')
}, (t) => [
  index('campaign_pauses_campaign').on(t.campaignId, t.pausedAt)
])

/** Each day's counts by state per wave of a campaign in waves, for the waves' burn-down charts (first run of a UTC day wins). */
export const waveSnapshots = sqliteTable('wave_snapshots', {
  day: text('day').notNull(),
  campaignId: text('campaign_id').notNull().references(() => campaigns.id, { onDelete: 'cascade' }),
  wave: integer('wave').notNull(),
  takenAt: integer('taken_at').notNull(),
  /** JSON object: state -> users. */
  counts: text('counts').notNull()
}, (t) => [
  primaryKey({ columns: [t.campaignId, t.wave, t.day] })
])
