import { cleanupAbandonedAwsMfa } from '../jobs/aws-mfa-cleanup.ts'
import type { Command } from './main.ts'

/** The housekeeping job's AWS step on demand: delete devices of virtual MFA setups started in the portal and never finished. */
export const awsMfaCleanup: Command = {
  name: 'aws cleanup-mfa',
  summary: 'Delete AWS virtual MFA devices whose portal setup was abandoned (older than AWS_IAM_PENDING_MFA_MINUTES, never enabled).',
  options: {
    json: { type: 'boolean', help: 'print one JSON document instead of a line (for scripts)' }
  },
  async run ({ options }, services, io) {
    if (services.providers.aws === undefined) {
      io.err('aws cleanup-mfa: AWS is not configured; set PROVIDERS=aws and the AWS_IAM_* variables')
      return 2
    }
    const report = await cleanupAbandonedAwsMfa(services)
    if (options.json === true) io.out(JSON.stringify(report))
    else io.out(`aws cleanup-mfa: ${report.deleted} deleted, ${report.alreadyGone} already gone, ${report.inUse} enabled meanwhile (left alone), ${report.failed} to retry`)
    return report.failed > 0 ? 1 : 0
  }
}
