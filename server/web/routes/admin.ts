import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { burndownGeometry } from '../../domain/burndown.ts'
import type { CampaignService } from '../../domain/campaigns.ts'
import type { SyncRun } from '../../domain/directory-sync.ts'
import type { Clock } from '../../domain/clock.ts'
import { burndownSeries, deadlineMarkers, notYetEnrolled, utcDay, type DashboardStore } from '../../domain/dashboard.ts'
import { describeDriftCheck, type DriftCheckRun } from '../../domain/drift-checks.ts'
import type { EnforcementEngine } from '../../domain/engine.ts'
import { retryTime } from '../../domain/enforcement-failures.ts'
import { DomainError } from '../../domain/errors.ts'
import { USER_STATES, type UserState } from '../../domain/states.ts'
import type { Config } from '../../config.ts'
import type { Services } from '../../wiring.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import { actorOf, flashOutcome } from './admin-campaigns.ts'

/** How each state reads on the dashboard: a short name and what it means for the people in it. */
export const STATE_LABELS: Record<UserState, { name: string, meaning: string }> = {
  exempt: { name: 'Exempt', meaning: 'Break-glass, service and other accounts an admin exempted.' },
  not_targeted: { name: 'Not in a campaign', meaning: 'No campaign includes them yet.' },
  pending: { name: 'Grace period', meaning: 'Their deadline is ahead and they have no qualifying method yet.' },
  enrolled: { name: 'Enrolled', meaning: 'They have a qualifying method; MFA becomes mandatory at their deadline.' },
  overdue: { name: 'Overdue', meaning: 'Their deadline passed without a qualifying method.' },
  enforced: { name: 'Enforced', meaning: 'MFA is mandatory for them.' },
  attention: { name: 'Needs attention', meaning: 'Enforcement failed in a way a person must fix, or was switched off by hand, or a break-glass account lacks a passkey.' }
}

const METHOD_LABELS: Record<string, string> = { passkey: 'Passkey or security key', totp: 'Authenticator app (codes)', phone: 'Phone (text message)' }

const ATTENTION_SHOWN = 20
const RETRYING_SHOWN = 20
const PLAN_SHOWN = 10
const STATE_PAGE = 50
// The chart covers the last year of daily snapshots; older ones stay in the table for reports.
const CHART_DAYS = 365

const StateParams = Type.Object({ state: Type.Union(USER_STATES.map((state) => Type.Literal(state))) })
const StateQuery = Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0 })) })
const UserParams = Type.Object({ userId: Type.String({ maxLength: 64 }) })
const CsrfOnly = Type.Object({ _csrf: Type.Optional(Type.String()) })

interface Deps {
  outbox: Pick<Services['outbox'], 'latest'>
  dashboard: Pick<DashboardStore, 'stateCounts' | 'methodCounts' | 'providerCounts' | 'attention' | 'retrying' | 'usersInState' | 'snapshots'>
  engine: Pick<EnforcementEngine, 'planSummary' | 'retryFailed' | 'retryAllFailed'>
  campaigns: Pick<CampaignService, 'list' | 'reapplyAfterDrift'>
  clock: Clock
  /** Connected directories and their latest sync run (where registration facts came from). */
  directories: () => Array<{ provider: string, run: SyncRun | null }>
  /** The newest drift check, to show when it ran and whether it could read every enforced user. */
  lastDriftCheck: () => DriftCheckRun | undefined
  /** Where mail and text messages go, for the outbox page to say so truthfully. */
  delivery: Pick<Config, 'sandbox' | 'mail' | 'sms'>
}

/** Registered under /admin; the guard covers every route added here. The dashboard, users by state, and the outbox. */
const adminRoutes: FastifyPluginAsync<Deps> = async (app, { outbox, dashboard, engine, campaigns, clock, directories, lastDriftCheck, delivery }) => {
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get('/', async (_request, reply) => {
    const now = clock.now()
    const { counts, unassessed } = dashboard.stateCounts()
    const total = USER_STATES.reduce((sum, state) => sum + counts[state], unassessed)
    const activeCampaigns = campaigns.list()
    const campaignNames = new Map(activeCampaigns.map((c) => [c.id, c.name]))
    const plan = engine.planSummary(PLAN_SHOWN)
    const windowStart = utcDay(new Date(now.getTime() - CHART_DAYS * 86_400_000))
    const points = burndownSeries(dashboard.snapshots(windowStart), counts, now)
    // Deadlines ahead widen the chart so they show; deadlines from before the window would only squash it.
    const chart = burndownGeometry(points, deadlineMarkers(activeCampaigns).filter((marker) => marker.day >= windowStart))
    const retrying = dashboard.retrying(RETRYING_SHOWN)
    return reply.page('admin/index', {
      title: 'Administration',
      total,
      unassessed,
      notYetEnrolled: notYetEnrolled(counts),
      states: USER_STATES.map((state) => ({ state, ...STATE_LABELS[state], count: counts[state] })),
      methods: dashboard.methodCounts().map((m) => ({ ...m, label: METHOD_LABELS[m.kind] ?? m.kind })),
      providers: dashboard.providerCounts().map((p) => ({ ...p, notYetEnrolled: notYetEnrolled(p.byState) })),
      attention: dashboard.attention(ATTENTION_SHOWN),
      retryingTotal: retrying.total,
      retrying: retrying.first.map((r) => ({ ...r, when: r.nextAttemptAt <= now ? 'at the next sweep' : `at ${retryTime(r.nextAttemptAt)}` })),
      directories: directories(),
      driftCheck: driftCheckView(lastDriftCheck()),
      attentionTotal: counts.attention,
      plan: {
        total: plan.total,
        enforce: plan.enforce,
        relax: plan.relax,
        byCampaign: [...plan.byCampaign].map(([id, c]) => ({ id, name: id === null ? null : campaignNames.get(id) ?? null, ...c })),
        sample: plan.sample
      },
      chart,
      chartFirstDay: points[0].day,
      today: utcDay(now)
    })
  })

  // Everyone in one state, a page at a time: the dashboard's counts link here.
  app.get<{ Params: Static<typeof StateParams>, Querystring: Static<typeof StateQuery> }>('/states/:state', { schema: { params: StateParams, querystring: StateQuery } }, async (request, reply) => {
    const { state } = request.params
    const rows = dashboard.usersInState(state, request.query.after ?? null, STATE_PAGE + 1)
    const shown = rows.slice(0, STATE_PAGE)
    return reply.page('admin/state', {
      title: `Users: ${STATE_LABELS[state].name}`,
      state,
      label: STATE_LABELS[state],
      count: dashboard.stateCounts().counts[state],
      rows: shown.map((row) => ({ ...row, deadlineDay: row.deadline === null ? null : utcDay(row.deadline) })),
      nextAfter: rows.length > STATE_PAGE ? shown[shown.length - 1].cursor : null,
      paged: request.query.after !== undefined
    })
  })

  // A failure a person had to fix (permissions, credentials): once fixed, the admin asks for another try.
  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof CsrfOnly> }>('/users/:userId/retry-enforcement', { schema: { params: UserParams, body: CsrfOnly }, config: { stepUp: 'Retry enforcement' } }, async (request, reply) => {
    let state: UserState | undefined
    try {
      state = engine.retryFailed(request.params.userId, actorOf(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect('/admin#attention', err.message, 'error')
    }
    return reply.flashRedirect('/admin#attention', retryOutcome(state))
  })

  app.post<{ Body: Static<typeof CsrfOnly> }>('/attention/retry', { schema: { body: CsrfOnly }, config: { stepUp: 'Retry enforcement for everyone needing attention' } }, async (request, reply) => {
    const count = engine.retryAllFailed(actorOf(request))
    return reply.flashRedirect('/admin#attention', count === 0
      ? 'No one needing attention had a failed enforcement to retry.'
      : `${count === 1 ? '1 user' : `${count} users`} will be tried again at the next sweep (every few minutes), where their deadline has passed in an armed campaign.`)
  })

  // Flagged drift: the admin decides that enforcement goes back on; the next sweep re-applies it.
  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof CsrfOnly> }>('/users/:userId/reapply-enforcement', { schema: { params: UserParams, body: CsrfOnly }, config: { stepUp: 'Re-apply enforcement' } }, async (request, reply) => {
    return flashOutcome(reply, '/admin#attention', () => { campaigns.reapplyAfterDrift(request.params.userId, actorOf(request)) },
      'Approved: the next sweep makes MFA mandatory for this user again.')
  })

  /** What happens after a retry, truthfully: the next sweep acts only where a deadline passed in an armed campaign. */
  function retryOutcome (state: UserState | undefined): string {
    if (state === 'overdue' || state === 'enrolled') return 'Retrying: the next sweep (every few minutes) tries again, if the user\'s deadline has passed in an armed campaign.'
    if (state === 'attention') return 'The failure is cleared, but the user still needs attention for another reason: see why below.'
    return `The failure is cleared. Nothing more is due for this user now (${state === undefined ? 'no state yet' : STATE_LABELS[state].name.toLowerCase()}).`
  }

  // Mail and text messages kept instead of sent (sandbox, or no relay configured), newest first. Only the text part is shown: email HTML is never rendered here.
  app.get('/outbox', async (_request, reply) => reply.page('admin/outbox', { title: 'Outbox', messages: outbox.latest(100), delivery: outboxDelivery(delivery) }))
}

/** What the outbox holds and why, in words: in the sandbox everything; elsewhere what has no relay configured. */
function outboxDelivery (config: Deps['delivery']): string {
  if (config.sandbox) return 'Sandbox: e-mail and text messages are kept here instead of being sent.'
  const mail = config.mail.smtpUrl === undefined
    ? 'No mail relay is configured (SMTP_URL), so e-mail is kept here instead of being sent: people do not receive it, and invitations are refused.'
    : 'E-mail goes out through the configured mail relay and is not kept here.'
  const sms = config.sms.provider === 'outbox'
    ? 'No text-message provider is configured (SMS_PROVIDER), so text messages are kept here instead of being sent.'
    : 'Text messages go out through the configured provider and are not kept here.'
  return `${mail} ${sms}`
}

/** The last drift check in words: complete, incomplete (some users unread) or failed, and what it found. */
function driftCheckView (run: DriftCheckRun | undefined): { at: Date, outcome: string, summary: string } | null {
  if (run === undefined) return null
  const outcome = run.unchecked > 0 ? 'incomplete' : run.checked === 0 && run.error !== null ? 'failed' : 'complete'
  return { at: run.startedAt, outcome, summary: describeDriftCheck(run) }
}

export default adminRoutes
