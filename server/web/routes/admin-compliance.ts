import { Readable } from 'node:stream'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { ComplianceRow, ComplianceService } from '../../domain/compliance.ts'
import type { Services } from '../../wiring.ts'
import { automationServices } from '../../wiring-automation.ts'
import { csvLine } from '../csv.ts'
import { complianceJson } from '../schemas/api.ts'
import { requireRole } from '../plugins/auth.ts'
import { requestContext } from './auth.ts'
import { awsCredentialReportView, CREDENTIAL_REPORT_COLUMNS } from '../../providers/aws/evidence.ts'

export const CSV_COLUMNS = ['user_id', 'email', 'provider', 'external_id', 'privileged', 'disabled', 'methods', 'portal_methods', 'provider_methods',
  'enrolled', 'weak', 'state', 'deadline', 'enforced_at', 'console_password', 'protection', 'meets_policy', 'methods_held', 'methods_required', 'recovery_codes'] as const

/** The campaign's ask in the export's words: "1", "2", "1 + recovery codes" (two at the directory for its users). */
export function methodsRequiredLabel (row: Pick<ComplianceRow, 'methodsRequired' | 'provider'>): string {
  if (row.methodsRequired === 'one') return '1'
  if (row.methodsRequired === 'two' || row.provider !== 'local') return '2'
  return '1 + recovery codes'
}

const STATE_KEYS: Record<string, string> = {
  exempt: 'compliance.state_exempt',
  not_targeted: 'compliance.state_not_targeted',
  pending: 'compliance.state_pending',
  enrolled: 'compliance.state_enrolled',
  overdue: 'compliance.state_overdue',
  enforced: 'compliance.state_enforced',
  attention: 'compliance.state_attention',
  unevaluated: 'compliance.state_unevaluated'
}

/** The rules' names and scopes in the reader's words (the JSON export keeps the domain's English). */
const RULE_KEYS: Record<string, { title: string, scope: string }> = {
  'cis-aws-1.10': { title: 'compliance.rule_cis_title', scope: 'compliance.rule_cis_scope' },
  'mfa-non-privileged': { title: 'compliance.rule_mfa_title', scope: 'compliance.rule_mfa_scope' }
}

/** /admin/compliance: the summary against CIS AWS 1.10 and "MFA for non-privileged users", and the downloads. Admins only. */
const adminComplianceRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const { compliance } = automationServices(services)
  const { audit, clock } = services
  app.addHook('preValidation', requireRole('admin'))

  app.get('/admin/compliance', async (request, reply) => {
    const summary = await compliance.summary()
    const { t } = request.i18n
    const words = (rule: typeof summary.rules.cisAws110) => RULE_KEYS[rule.id] === undefined ? rule : { ...rule, title: t(RULE_KEYS[rule.id].title), scope: t(RULE_KEYS[rule.id].scope) }
    return reply.page('admin/compliance', {
      title: t('compliance.title'),
      summary,
      rules: [words(summary.rules.cisAws110), words(summary.rules.nonPrivilegedMfa)],
      awsConnected: services.providers.aws !== undefined,
      states: Object.entries(summary.byState).filter(([, count]) => count > 0).map(([state, count]) => ({ label: STATE_KEYS[state] === undefined ? state : t(STATE_KEYS[state]), count }))
    })
  })

  // Downloads are streamed page by page (never every user in memory) and audited before the first byte.
  app.get('/admin/compliance.csv', async (request, reply) => {
    await recordDownload(request, 'csv')
    return download(reply, 'text/csv', `mfa-compliance-${day()}.csv`).send(Readable.from(csvRows(compliance)))
  })

  app.get('/admin/compliance.json', async (request, reply) => {
    await recordDownload(request, 'json')
    return download(reply, 'application/json', `mfa-compliance-${day()}.json`).send(Readable.from(jsonDocument(compliance)))
  })

  // CIS AWS 1.10 evidence straight from IAM's credential report (user, password_enabled, mfa_active, user_creation_time).
  // Asked for on demand: IAM may take seconds to generate it.
  app.get('/admin/compliance/aws-credential-report.csv', async (request, reply) => {
    const view = await awsCredentialReportView(services)
    if (view === null) {
      const { t } = request.i18n
      return reply.code(404).page('errors/error', { title: t('compliance.not_found'), status: 404, heading: t('compliance.not_found'), message: t('compliance.aws_not_connected'), requestId: null })
    }
    await recordDownload(request, 'aws-credential-report')
    const lines = [csvLine([...CREDENTIAL_REPORT_COLUMNS]), ...view.rows.map((row) => csvLine(CREDENTIAL_REPORT_COLUMNS.map((column) => row[column])))]
    return download(reply, 'text/csv', `aws-credential-report-${view.generatedAt.toISOString().slice(0, 10)}.csv`).send(lines.join(''))
  })

  async function recordDownload (request: FastifyRequest, format: 'csv' | 'json' | 'aws-credential-report'): Promise<void> {
    const user = request.user!
    const { ip, userAgent } = requestContext(request)
    await audit.append({ action: 'compliance.exported', actorId: user.id, actorLabel: user.email, details: { format }, ip, userAgent })
  }

  function day (): string {
    return clock.now().toISOString().slice(0, 10)
  }
}

/** An attachment that no cache keeps (it names people and their security state). */
function download (reply: FastifyReply, type: string, filename: string): FastifyReply {
  return reply.type(`${type}; charset=utf-8`).header('content-disposition', `attachment; filename="${filename}"`).header('cache-control', 'no-store')
}

async function * csvRows (compliance: ComplianceService): AsyncGenerator<string> {
  yield csvLine([...CSV_COLUMNS])
  for await (const row of compliance.rows()) yield csvLine(csvCells(row))
}

function csvCells (row: ComplianceRow): Array<string | boolean | null> {
  return [
    row.userId, row.email, row.provider, row.externalId, row.privileged, row.disabled,
    row.methods.join(' '), row.portalMethods.join(' '), row.providerMethods.join(' '),
    row.enrolled, row.weak, row.state, row.deadline?.toISOString() ?? null, row.enforcedAt?.toISOString() ?? null, row.consolePassword, row.protection,
    row.meetsPolicy, String(row.methodsHeld), methodsRequiredLabel(row), row.hasRecoveryCodes
  ]
}

/** { "summary": …, "rows": [ … ] }, written row by row; the summary's pass comes first, the rows' second. */
async function * jsonDocument (compliance: ComplianceService): AsyncGenerator<string> {
  const summary = await compliance.summary()
  yield `{"summary":${JSON.stringify(summary)},"rows":[`
  let first = true
  for await (const row of compliance.rows()) {
    yield (first ? '\n' : ',\n') + JSON.stringify(complianceJson(row))
    first = false
  }
  yield '\n]}\n'
}

export default adminComplianceRoutes
