import type { Command } from './main.ts'

/** Reads the configured directories (Entra ID, AWS IAM) into the portal now, instead of waiting for the hourly run. */
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
            `registration from ${report.registrationSource ?? 'n/a'}${report.invalidPhones > 0 ? `; ${report.invalidPhones} directory phone numbers were not valid` : ''}`)
        }
      } catch (err) {
        failed = true
        io.err(`sync ${name} failed: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    return failed ? 1 : 0
  }
}
