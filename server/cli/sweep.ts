import type { Command } from './main.ts'

/** The same sweep the scheduler runs: refresh states, plan, and (unless --dry-run) enforce. */
export const sweep: Command = {
  name: 'sweep',
  summary: 'Enforce MFA for users whose deadline has passed in an armed campaign. With --dry-run, only show what would happen.',
  options: {
    'dry-run': { type: 'boolean', help: 'show, per user, what the next sweep would do and why; change nothing at any provider' },
    json: { type: 'boolean', help: 'print one JSON document instead of lines (for scripts)' },
    'check-drift': { type: 'boolean', help: 'first re-read the provider for enforced users; enforcement switched off by hand is re-applied' }
  },
  async run ({ options }, services, io) {
    const dryRun = options['dry-run'] === true
    if (dryRun) {
      // Read-only apart from bringing lapsed states up to date, exactly as the real sweep starts.
      services.engine.refreshLapsed()
      // Streamed row by row: a million due users never sit in memory at once.
      let count = 0
      if (options.json === true) io.out(`{"dryRun":true,"at":${JSON.stringify(services.clock.now().toISOString())},"planned":[`)
      for (const item of services.engine.planItems()) {
        if (options.json === true) io.out(`${count === 0 ? '' : ','}${JSON.stringify(item)}`)
        else io.out(`${item.action}\t${item.email}\t${item.reason}`)
        count++
      }
      if (options.json === true) io.out(']}')
      else io.out(`dry run: ${count} user${count === 1 ? '' : 's'} would be changed; nothing was changed`)
      return 0
    }
    const drifted = options['check-drift'] === true ? await services.engine.detectDrift() : []
    if (drifted.length > 0 && options.json !== true) io.out(`drift: enforcement had been switched off by hand for ${drifted.length} user${drifted.length === 1 ? '' : 's'}; re-applying`)
    const report = await services.engine.sweep()
    const reminders = await services.reminders.send(services.engine.campaigns())
    if (options.json === true) {
      io.out(JSON.stringify({ dryRun: false, at: services.clock.now().toISOString(), planned: report.planned, enqueued: report.enqueued, completed: report.completed, retried: report.retried, failed: report.failed, reminders, drifted: drifted.length }))
    } else {
      io.out(`sweep: ${report.planned} planned, ${report.completed} done, ${report.retried} to retry, ${report.failed} failed (see the admin page for users needing attention); ${reminders} reminder${reminders === 1 ? '' : 's'} sent`)
    }
    return report.failed > 0 ? 1 : 0
  }
}
