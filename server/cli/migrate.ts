import type { Command } from './main.ts'

// createServices has already applied whatever was pending; this reports where the schema stands.
export const migrate: Command = {
  name: 'migrate',
  summary: 'Apply pending database migrations and report whether the schema is current. Safe to run again.',
  async run (_input, services, io) {
    const status = await services.stores.readiness()
    io.out(`database: ${services.config.databaseUrl === undefined ? services.config.databaseFile : redactedUrl(services.config.databaseUrl)}`)
    if (!status.current) {
      io.err(`migrations applied: ${status.applied} of ${status.expected}; the database schema is not current for this version of mfa-rollout`)
      return 1
    }
    io.out(`migrations applied: ${status.applied} of ${status.expected}, current`)
    return 0
  }
}

/** The PostgreSQL URL without its password, for the operator's screen. */
function redactedUrl (text: string): string {
  const url = new URL(text)
  if (url.password !== '') url.password = '***'
  return url.toString()
}
