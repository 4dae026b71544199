import type { Config } from './config.ts'
import { SqliteAuditLog } from './db/audit.ts'
import { openDatabase, type Database } from './db/connection.ts'
import { applyMigrations } from './db/migrate.ts'
import { SqliteSessionStore } from './db/sessions.ts'
import { SqliteThrottleStore } from './db/throttles.ts'
import { SqliteUserStore } from './db/users.ts'
import { systemClock, type Clock } from './domain/clock.ts'
import { Regulator } from './domain/regulation.ts'
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
  close(): void
}

export interface ServiceOverrides {
  clock?: Clock
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
    close: () => database.close()
  }
}
