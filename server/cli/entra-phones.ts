import type { Command } from './main.ts'

/**
 * Pushes directory phone numbers into Entra users' mobile MFA methods (pre-population), with a dry run first. Like
 * the API it only creates: a user who already has another mobile number is a conflict, left as it is. The operator
 * may include privileged users, on purpose only (--include-privileged, recorded in the audit log).
 */
export const entraPhones: Command = {
  name: 'entra-phones',
  summary: 'Pre-populate Entra users\' mobile MFA phone from their directory number (pinned in the portal, or read live), where they have none yet. With --dry-run, only show what would change.',
  options: {
    'dry-run': { type: 'boolean', help: 'show, per user, what would be created in Entra; change nothing' },
    'from-directory': { type: 'boolean', help: 'read numbers live from Entra\'s configured attribute (ENTRA_PHONE_ATTRIBUTE) instead of the numbers the last sync stored' },
    'include-privileged': { type: 'boolean', help: 'also create mobile methods for privileged users (directory administrators, helpdesk and admin accounts); skipped otherwise' },
    json: { type: 'boolean', help: 'print one JSON document instead of lines (for scripts)' }
  },
  async run ({ options }, services, io) {
    const dryRun = options['dry-run'] === true
    let report
    try {
      report = await services.entra?.phones.prepopulate({
        dryRun,
        fromDirectory: options['from-directory'] === true,
        includePrivileged: options['include-privileged'] === true,
        auditDetails: { via: 'cli' }
      }, { id: null, label: 'cli' })
    } catch (err) {
      io.err(`entra-phones failed: ${err instanceof Error ? err.message : String(err)}`)
      return 1
    }
    if (report === undefined) {
      io.err('entra-phones: Entra ID is not configured; add entra to PROVIDERS and set the ENTRA_* variables')
      return 2
    }
    if (options.json === true) {
      io.out(JSON.stringify(report))
    } else {
      for (const line of report.users) {
        const who = line.email ?? line.externalId
        const what = line.action === 'invalid' || line.action === 'skipped_privileged'
          ? `${line.action}: ${line.reason ?? 'not a usable number'}`
          : line.action === 'conflict'
            ? `conflict: Entra has ${line.previous ?? '-'}, the directory says ${line.phone ?? '-'}; left as it is for a person to resolve`
            : `${line.action} ${line.previous ?? '-'} -> ${line.phone ?? '-'}${!dryRun && line.action === 'create' && !line.applied ? ` FAILED: ${line.reason ?? 'unknown'}` : ''}`
        io.out(`${who}\t${what}`)
      }
      const c = report.counts
      io.out(`${dryRun ? 'dry run: ' : ''}${report.users.length} user${report.users.length === 1 ? '' : 's'} from ${report.source === 'directory' ? 'the directory' : 'pinned numbers'}: ` +
        `${c.create} to create, ${c.unchanged} unchanged, ${c.conflict} conflicting (not changed), ${c.skipped_privileged} privileged skipped, ${c.invalid} invalid` +
        `${dryRun ? '; nothing was changed' : `, ${c.failed} failed`}`)
    }
    return report.counts.failed > 0 ? 1 : 0
  }
}
