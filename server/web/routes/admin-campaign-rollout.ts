/** The campaign page's waves and breaker (issue #17 items 1 and 2): what the page shows, and the admin's two actions. */
import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { burndownGeometry, type ChartSize } from '../../domain/burndown.ts'
import { burndownSeries, utcDay, type DashboardStore } from '../../domain/dashboard.ts'
import type { Campaign } from '../../domain/engine.ts'
import { DomainError } from '../../domain/errors.ts'
import { openPause, type RolloutGuard } from '../../domain/rollout-guard.ts'
import { notFoundFor } from '../plugins/errors.ts'
import type { CampaignService } from '../../domain/campaigns.ts'
import { actorOf } from './admin-campaigns.ts'

const WAVE_CHART: ChartSize = { width: 360, height: 180, margin: { top: 20, right: 12, bottom: 30, left: 36 } }
/** How far back a wave's burn-down reaches. */
const CHART_DAYS = 90

export interface RolloutDeps {
  campaigns: Pick<CampaignService, 'find'>
  rollout: Pick<RolloutGuard, 'waves' | 'readings' | 'resume' | 'startWave'>
  dashboard: Pick<DashboardStore, 'waveSnapshots'>
}

const CampaignParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const WaveParams = Type.Object({ id: Type.String({ maxLength: 64 }), wave: Type.Integer({ minimum: 2, maximum: 10 }) })
const ResumeBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })), _csrf: Type.Optional(Type.String()) })
const CsrfOnly = Type.Object({ _csrf: Type.Optional(Type.String()) })

/** What the campaign page shows about its breaker and waves. */
export async function rolloutView (campaign: Campaign, { rollout, dashboard }: Pick<RolloutDeps, 'rollout' | 'dashboard'>, now: Date) {
  const pause = openPause(campaign)
  const { counts, readings } = await rollout.readings(campaign)
  const standings = campaign.waves === null ? [] : await rollout.waves(campaign)
  const snapshots = campaign.waves === null ? new Map() : await dashboard.waveSnapshots(campaign.id, utcDay(new Date(now.getTime() - CHART_DAYS * 86_400_000)))
  const nextToStart = standings.find((w) => !w.counting)?.wave ?? null
  return {
    paused: pause === null ? null : { since: pause.pausedAt, signal: pause.signal, value: pause.figures.value, threshold: pause.figures.threshold, counts: pause.figures.counts },
    pauses: campaign.pauses.filter((p) => p.resumedAt !== null).map((p) => ({ from: p.pausedAt, to: p.resumedAt!, signal: p.signal, reason: p.resumeReason ?? '' })),
    breaker: campaign.breaker,
    counts,
    readings,
    waves: standings.map((w) => ({
      wave: w.wave,
      state: w.state,
      deadline: w.deadline,
      startedAt: w.startedAt,
      total: w.total,
      notYetEnrolled: w.notYetEnrolled,
      enforced: w.progress.byState.enforced ?? 0,
      canStart: w.wave === nextToStart,
      chart: burndownGeometry(burndownSeries(snapshots.get(w.wave) ?? [], w.progress.byState, now), [{ day: utcDay(w.deadline), kind: 'deadline', label: `${w.wave}` }], WAVE_CHART)
    }))
  }
}

/** POST /:id/resume (a reason required) and POST /:id/waves/:wave/start: admins only (the plugin's guard), CSRF-checked, audited. */
export function registerRolloutRoutes (app: FastifyInstance, { campaigns, rollout }: RolloutDeps): void {
  app.post<{ Params: Static<typeof CampaignParams>, Body: Static<typeof ResumeBody> }>('/:id/resume', { schema: { params: CampaignParams, body: ResumeBody }, config: { stepUp: 'stepup.action.resume_campaign' } }, async (request, reply) => {
    const campaign = await campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}#breaker`
    try {
      await rollout.resume(campaign.id, request.body.reason ?? '', actorOf(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect(url, request.i18n.error(err), 'error')
    }
    return reply.flashRedirect(url, request.i18n.t('waves.resumed'))
  })

  app.post<{ Params: Static<typeof WaveParams>, Body: Static<typeof CsrfOnly> }>('/:id/waves/:wave/start', { schema: { params: WaveParams, body: CsrfOnly }, config: { stepUp: 'stepup.action.start_next_wave' } }, async (request, reply) => {
    const campaign = await campaigns.find(request.params.id)
    if (campaign === undefined) return notFoundFor(request, reply)
    const url = `/admin/campaigns/${encodeURIComponent(campaign.id)}#waves`
    try {
      await rollout.startWave(campaign.id, request.params.wave, actorOf(request))
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return reply.flashRedirect(url, request.i18n.error(err), 'error')
    }
    return reply.flashRedirect(url, request.i18n.t('waves.started', { wave: request.params.wave }))
  })
}
