import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { burndownGeometry } from '../../domain/burndown.ts'
import type { CampaignService } from '../../domain/campaigns.ts'
import type { SyncRun } from '../../domain/directory-sync.ts'
import type { Clock } from '../../domain/clock.ts'
import { burndownSeries, deadlineMarkers, notYetEnrolled, utcDay, type DashboardStore } from '../../domain/dashboard.ts'
import type { DriftCheckRun } from '../../domain/drift-checks.ts'
import type { EnforcementEngine } from '../../domain/engine.ts'
import { DomainError } from '../../domain/errors.ts'
import type { MessageValues, Translator } from '../../domain/i18n.ts'
import { USER_STATES, type UserState } from '../../domain/states.ts'
import { sayStored, sayWords } from '../../domain/stored-words.ts'
import type { Config } from '../../config.ts'
import type { Services } from '../../wiring.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import { actorOf, flashOutcome } from './admin-campaigns.ts'

/** How each state reads on the dashboard: a short name and what it means for the people in it (locales/…/admin.json). */
const STATE_KEYS: Record<UserState, { name: string, meaning: string }> = {
  exempt: { name: 'admin.state_exempt', meaning: 'admin.state_exempt_meaning' },
  not_targeted: { name: 'admin.state_not_targeted', meaning: 'admin.state_not_targeted_meaning' },
  pending: { name: 'admin.state_pending', meaning: 'admin.state_pending_meaning' },
  enrolled: { name: 'admin.state_enrolled', meaning: 'admin.state_enrolled_meaning' },
  overdue: { name: 'admin.state_overdue', meaning: 'admin.state_overdue_meaning' },
  enforced: { name: 'admin.state_enforced', meaning: 'admin.state_enforced_meaning' },
  attention: { name: 'admin.state_attention', meaning: 'admin.state_attention_meaning' }
}

/** A state's name and meaning in the reader's language. */
export function stateLabel (i18n: Translator, state: UserState): { name: string, meaning: string } {
  return { name: i18n.t(STATE_KEYS[state].name), meaning: i18n.t(STATE_KEYS[state].meaning) }
}

const METHOD_KEYS: Record<string, string> = { passkey: 'admin.method_passkey', totp: 'admin.method_totp', phone: 'admin.method_phone' }

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
  directories: () => Promise<Array<{ provider: string, run: SyncRun | null }>>
  /** The newest drift check, to show when it ran and whether it could read every enforced user. */
  lastDriftCheck: () => Promise<DriftCheckRun | undefined>
  /** Where mail and text messages go, for the outbox page to say so truthfully. */
  delivery: Pick<Config, 'sandbox' | 'mail' | 'sms'>
}

/** Registered under /admin; the guard covers every route added here. The dashboard, users by state, and the outbox. */
const adminRoutes: FastifyPluginAsync<Deps> = async (app, { outbox, dashboard, engine, campaigns, clock, directories, lastDriftCheck, delivery }) => {
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get('/', async (request, reply) => {
    const { i18n } = request
    const now = clock.now()
    const { counts, unassessed } = await dashboard.stateCounts()
    const total = USER_STATES.reduce((sum, state) => sum + counts[state], unassessed)
    const activeCampaigns = await campaigns.list()
    const campaignNames = new Map(activeCampaigns.map((c) => [c.id, c.name]))
    const plan = await engine.planSummary(PLAN_SHOWN)
    const windowStart = utcDay(new Date(now.getTime() - CHART_DAYS * 86_400_000))
    const points = burndownSeries(await dashboard.snapshots(windowStart), counts, now)
    // Deadlines ahead widen the chart so they show; deadlines from before the window would only squash it.
    const chart = burndownGeometry(points, deadlineMarkers(activeCampaigns).filter((marker) => marker.day >= windowStart))
    const retrying = await dashboard.retrying(RETRYING_SHOWN)
    return reply.page('admin/index', {
      title: i18n.t('admin.title'),
      total,
      unassessed,
      notYetEnrolled: notYetEnrolled(counts),
      states: USER_STATES.map((state) => ({ state, ...stateLabel(i18n, state), count: counts[state] })),
      // Kinds only a provider reports (Entra's own) keep their name.
      methods: (await dashboard.methodCounts()).map((m) => ({ ...m, label: METHOD_KEYS[m.kind] === undefined ? m.kind : i18n.t(METHOD_KEYS[m.kind]) })),
      providers: (await dashboard.providerCounts()).map((p) => ({ ...p, notYetEnrolled: notYetEnrolled(p.byState) })),
      // Why, in the reader's language (rows from before the catalogue keep their English).
      attention: (await dashboard.attention(ATTENTION_SHOWN)).map((u) => ({ ...u, reason: sayStored(i18n, u.reasonWords, u.reason) })),
      retryingTotal: retrying.total,
      retrying: retrying.first.map((r) => ({ ...r, dueNow: r.nextAttemptAt <= now })),
      directories: await directories(),
      driftCheck: driftCheckView(await lastDriftCheck()),
      attentionTotal: counts.attention,
      plan: {
        total: plan.total,
        enforce: plan.enforce,
        relax: plan.relax,
        byCampaign: [...plan.byCampaign].map(([id, c]) => ({ id, name: id === null ? null : campaignNames.get(id) ?? null, ...c })),
        sample: plan.sample.map((item) => ({ ...item, reason: sayWords(i18n, item.words) }))
      },
      chart,
      chartFirstDay: points[0].day,
      today: utcDay(now)
    })
  })

  // Everyone in one state, a page at a time: the dashboard's counts link here.
  app.get<{ Params: Static<typeof StateParams>, Querystring: Static<typeof StateQuery> }>('/states/:state', { schema: { params: StateParams, querystring: StateQuery } }, async (request, reply) => {
    const { state } = request.params
    const label = stateLabel(request.i18n, state)
    const rows = await dashboard.usersInState(state, request.query.after ?? null, STATE_PAGE + 1)
    const shown = rows.slice(0, STATE_PAGE)
    return reply.page('admin/state', {
      title: request.i18n.t('admin.state_page_title', { state: label.name }),
      state,
      label,
      count: (await dashboard.stateCounts()).counts[state],
      rows: shown.map((row) => ({ ...row, reason: sayStored(request.i18n, row.reasonWords, row.reason) })),
      nextAfter: rows.length > STATE_PAGE ? shown[shown.length - 1].cursor : null,
      paged: request.query.after !== undefined
    })
  })

  // A failure a person had to fix (permissions, credentials): once fixed, the admin asks for another try.
  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof CsrfOnly> }>('/users/:userId/retry-enforcement', { schema: { params: UserParams, body: CsrfOnly }, config: { stepUp: 'stepup.action.retry_enforcement' } }, async (request, reply) => {
    let state: UserState | undefined
    try {
      state = await engine.retryFailed(request.params.userId, actorOf(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect('/admin#attention', request.i18n.error(err), 'error')
    }
    return reply.flashRedirect('/admin#attention', retryOutcome(request.i18n, state))
  })

  app.post<{ Body: Static<typeof CsrfOnly> }>('/attention/retry', { schema: { body: CsrfOnly }, config: { stepUp: 'stepup.action.retry_enforcement_all' } }, async (request, reply) => {
    const count = await engine.retryAllFailed(actorOf(request))
    return reply.flashRedirect('/admin#attention', count === 0 ? request.i18n.t('admin.retry_all_none') : request.i18n.t('admin.retry_all_done', { count }))
  })

  // Flagged drift: the admin decides that enforcement goes back on; the next sweep re-applies it.
  app.post<{ Params: Static<typeof UserParams>, Body: Static<typeof CsrfOnly> }>('/users/:userId/reapply-enforcement', { schema: { params: UserParams, body: CsrfOnly }, config: { stepUp: 'stepup.action.reapply_enforcement' } }, async (request, reply) => {
    return flashOutcome(reply, '/admin#attention', async () => { await campaigns.reapplyAfterDrift(request.params.userId, actorOf(request)) },
      request.i18n.t('admin.reapplied'))
  })

  /** What happens after a retry, truthfully: the next sweep acts only where a deadline passed in an armed campaign. */
  function retryOutcome (i18n: Translator, state: UserState | undefined): string {
    if (state === 'overdue' || state === 'enrolled') return i18n.t('admin.retry_done')
    if (state === 'attention') return i18n.t('admin.retry_still_attention')
    return i18n.t('admin.retry_cleared', { state: state === undefined ? i18n.t('admin.retry_no_state') : stateLabel(i18n, state).name })
  }

  // Mail and text messages kept instead of sent (sandbox, or no relay configured), newest first. Only the text part is shown: email HTML is never rendered here.
  app.get('/outbox', async (request, reply) => reply.page('admin/outbox', { title: request.i18n.t('admin.outbox_title'), messages: await outbox.latest(100), delivery: outboxDelivery(request.i18n, delivery) }))
}

/** What the outbox holds and why, in words: in the sandbox everything; elsewhere what has no relay configured. */
function outboxDelivery (i18n: Translator, config: Deps['delivery']): string {
  if (config.sandbox) return i18n.t('admin.outbox_sandbox')
  const mail = config.mail.smtpUrl === undefined ? i18n.t('admin.outbox_mail_kept') : i18n.t('admin.outbox_mail_sent')
  const sms = config.sms.provider === 'outbox' ? i18n.t('admin.outbox_sms_kept') : i18n.t('admin.outbox_sms_sent')
  return `${mail} ${sms}`
}

/**
 * The last drift check: complete, incomplete (some users unread) or failed, and what it found, as a message key and
 * its values (the words of describeDriftCheck in drift-checks.ts, which the CLI prints).
 */
function driftCheckView (run: DriftCheckRun | undefined): { at: Date, outcome: string, summaryKey: string, values: MessageValues } | null {
  if (run === undefined) return null
  const outcome = run.unchecked > 0 ? 'incomplete' : run.checked === 0 && run.error !== null ? 'failed' : 'complete'
  const values: MessageValues = { checked: run.checked, drifted: run.drifted, unchecked: run.unchecked, error: run.error ?? '' }
  const summaryKey = run.checked === 0 && run.unchecked === 0 && run.error !== null ? 'admin.drift_failed'
    : run.unchecked === 0 ? 'admin.drift_checked'
      : run.error === null ? (run.checked === 0 && run.drifted === 0 ? 'admin.drift_unread_no_reason' : 'admin.drift_checked_unread_no_reason')
        : run.checked === 0 && run.drifted === 0 ? 'admin.drift_unread' : 'admin.drift_checked_unread'
  return { at: run.startedAt, outcome, summaryKey, values }
}

export default adminRoutes
