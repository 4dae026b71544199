import { migrationStatus } from '../db/migrate.ts'
import type { Command } from './main.ts'

// createServices has already applied whatever was pending; this reports where the schema stands.
export const migrate: Command = {
  name: 'migrate',
  summary: 'Apply pending database migrations and report whether the schema is current. Safe to run again.',
  async run (_input, services, io) {
    const status = migrationStatus(services.database.sqlite)
    io.out(`database: ${services.config.databaseFile}`)
    if (!status.current) {
      io.err(`migrations applied: ${status.applied} of ${status.expected}; the database schema is not current for this version of mfa-rollout`)
      return 1
    }
    io.out(`migrations applied: ${status.applied} of ${status.expected}, current`)
    return 0
  }
}
