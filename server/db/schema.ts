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
