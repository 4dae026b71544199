import { describeSyncNames } from '../domain/directory-sync.ts'
import type { Command } from './main.ts'

/** Why registration facts came from per-user reads, where that needs saying (Entra reads the report when licensed). */
const PER_USER_NOTE: Record<string, string> = {
  'authentication/methods': ' (the tenant has no Entra ID P1 licence for the registration report, so each user was read one by one)'
}

/**
 * Reads the configured directories (Entra ID, AWS IAM) into the portal now, instead of waiting for the hourly run.
 * A failure prints the provider's own words (e.g. which Graph permission the app registration lacks) and exits 1.
 */
export const sync: Command = {
  name: 'sync',
  summary: 'Read users, privileged roles, groups and registered methods from the configured directories (PROVIDERS).',
  options: {
    provider: { type: 'string', help: 'only this provider (entra or aws); default: every configured one' },
    json: { type: 'boolean', help: 'print one JSON document per provider instead of lines (for scripts)' }
  },
  async run ({ options }, services, io) {
    const wanted = typeof options.provider === 'string' ? [options.provider] : Object.keys(services.providers).filter((name) => name !== 'local')
    if (wanted.length === 0) {
      io.err('sync: no directory is configured; set PROVIDERS (entra, aws) and their variables')
      return 2
    }
    let failed = false
    for (const name of wanted) {
      const provider = services.providers[name]
      if (provider === undefined || name === 'local') {
        io.err(`sync: "${name}" is not a configured directory; configured: ${Object.keys(services.providers).filter((n) => n !== 'local').join(', ') || 'none'}`)
        return 2
      }
      try {
        const report = await services.directorySync.sync(provider, { id: null, label: 'cli' })
        if (options.json === true) io.out(JSON.stringify(report))
        else {
          io.out(`sync ${name}: ${report.seen} seen, ${report.created} new, ${report.updated} updated, ${report.skipped} skipped, ${report.disabled} switched off; ` +
            `registration from ${report.registrationSource ?? 'n/a'}${PER_USER_NOTE[report.registrationSource ?? ''] ?? ''}${report.invalidPhones > 0 ? `; ${report.invalidPhones} directory phone numbers were not valid` : ''}`)
          // By name: an e-mail in use twice, or an account taken over by its e-mail, is for a person to check.
          for (const line of describeSyncNames(report)) io.out(`sync ${name}: ${line}`)
        }
      } catch (err) {
        failed = true
        io.err(`sync ${name} failed: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    return failed ? 1 : 0
  }
}
