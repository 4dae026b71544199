import { randomUUID } from 'node:crypto'
import { and, asc, desc, eq, getTableColumns, gt, isNotNull, isNull, lte, or, sql } from 'drizzle-orm'
import { alias } from 'drizzle-orm/sqlite-core'
import type { AccessKeyReview } from '../domain/access-keys.ts'
import type { CampaignInput, CampaignStore, ExemptionKind, ExemptionRecord } from '../domain/campaigns.ts'
import { DEFAULT_SMS_SUNSET_GRACE_DAYS, type DeadlineSubject } from '../domain/deadlines.ts'
import type { Campaign } from '../domain/engine.ts'
import type { CampaignPause, PauseFigures } from '../domain/rollout-guard.ts'
import type { BreakerSignal } from '../domain/breaker.ts'
import type { WavePlan } from '../domain/waves.ts'
import { campaignPauses, campaigns, exemptions, extensions, userGroups, users } from './schema.ts'
import type { SqliteAccess } from './sqlite-access.ts'

type Row = typeof campaigns.$inferSelect

/**
 * A campaign's wave starts and pauses, each as a JSON array of WaveStartTuple and PauseTuple in no order
 * (campaignWithHistory sorts them: an aggregate's ORDER BY makes SQLite build a temporary b-tree each time), for the campaign whose
 * id is `campaignId` (a column named in full: drizzle writes a column of the outer table as a bare "id", which inside
 * the pauses' subquery would be the pause's own).
 */
const waveStartsOf = (campaignId: string): string => `(SELECT json_group_array(json_array(w.wave, w.started_at, w.started_by))
    FROM campaign_wave_starts w WHERE w.campaign_id = ${campaignId})`
const pausesOf = (campaignId: string): string => `(SELECT json_group_array(json_array(p.id, p.paused_at, p.signal, p.figures, p.resumed_at, p.resumed_by, p.resume_reason))
    FROM campaign_pauses p WHERE p.campaign_id = ${campaignId})`

/** A campaign's row with its wave starts and pauses (as text). */
const WITH_HISTORY = {
  ...getTableColumns(campaigns),
  waveStarts: sql<string>`${sql.raw(waveStartsOf('campaigns.id'))}`,
  pauses: sql<string>`${sql.raw(pausesOf('campaigns.id'))}`
}

/** A campaigns row (aliased c) as the pairs of a JSON object keyed like its Row: both dialects name the columns alike. */
export const CAMPAIGN_JSON_PAIRS = Object.entries(getTableColumns(campaigns)).map(([key, column]) => `'${key}', c.${column.name}`).join(', ')

/**
 * The live campaigns that `list` gives, each with its wave starts and pauses, as one JSON array of CampaignJson: for a
 * read that brings them along with something else (the engine's facts read; the home page's session read). In no
 * order, for the reason waveStartsOf gives: the reader puts them newest first (db/engine.ts liveCampaignsFrom).
 */
export const LIVE_CAMPAIGNS_JSON = `(SELECT json_group_array(json_object(${CAMPAIGN_JSON_PAIRS}, 'waveStarts', json(${waveStartsOf('c.id')}), 'pauses', json(${pausesOf('c.id')})))
  FROM campaigns c WHERE c.archived_at IS NULL)`

export class SqliteCampaignStore implements CampaignStore {
  // Read often (every state refresh and sweep, the consoles), with the wave starts and pauses in the same
  // statement: prepared once, not built per call.
  private readonly active
  private readonly byId

  constructor (private readonly access: SqliteAccess) {
    const { db } = access
    this.active = db.select(WITH_HISTORY).from(campaigns).where(isNull(campaigns.archivedAt)).orderBy(desc(campaigns.createdAt), asc(campaigns.id)).prepare()
    this.byId = db.select(WITH_HISTORY).from(campaigns).where(eq(campaigns.id, sql.placeholder('id'))).prepare()
  }

  async create (input: CampaignInput, createdBy: string | null, now: Date): Promise<Campaign> {
    return await this.access.run(() => {
      const row = this.access.db.insert(campaigns).values({
        id: randomUUID(),
        ...campaignColumns(input),
        createdBy,
        createdAt: now.getTime(),
        updatedAt: now.getTime()
      }).returning().get()
      return this.complete([row])[0]
    })
  }

  async find (id: string): Promise<Campaign | undefined> {
    return await this.access.run(() => this.findNow(id))
  }

  private findNow (id: string): Campaign | undefined {
    const row = this.byId.get({ id })
    return row === undefined ? undefined : withHistory(row)
  }

  async list (): Promise<Campaign[]> {
    return await this.access.run(() => {
      return this.active.all().map(withHistory)
    })
  }

  /** A campaign just written, as the rest of the portal sees it: with its wave starts and pauses. */
  private complete (rows: Row[]): Campaign[] {
    return rows.map((row) => this.findNow(row.id)!)
  }

  async confirmAccessKeys (id: string, review: AccessKeyReview, now: Date): Promise<Campaign> {
    return await this.access.run(() => {
      const row = this.access.db.update(campaigns).set({
        awsPolicyVariant: review.variant,
        accessKeysReviewedAt: review.at.getTime(),
        accessKeysReviewedBy: review.by,
        accessKeysReview: JSON.stringify({ variant: review.variant, keyIds: review.keyIds }),
        updatedAt: now.getTime()
      }).where(eq(campaigns.id, id)).returning().get()
      return this.complete([row])[0]
    })
  }

  async setArmed (id: string, armedAt: Date | null, armedBy: string | null, now: Date): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(campaigns).set({ armedAt: armedAt?.getTime() ?? null, armedBy, updatedAt: now.getTime() }).where(eq(campaigns.id, id)).run()
    })
  }

  async addExtension (userId: string, campaignId: string, days: number, reason: string, approvedBy: string | null, now: Date): Promise<void> {
    return await this.access.run(() => {
      this.access.db.insert(extensions).values({ id: randomUUID(), userId, campaignId, days, reason, approvedBy, createdAt: now.getTime() }).run()
    })
  }

  async extensionsFor (userId: string): Promise<Array<{ campaignId: string, days: number }>> {
    return await this.access.run(() => {
      return this.access.db.select({ campaignId: extensions.campaignId, days: extensions.days }).from(extensions).where(eq(extensions.userId, userId)).all()
    })
  }

  async addExemption (userId: string, exemption: { kind: 'break_glass' | 'service_account' | 'other', reason: string, owner: string, expiresAt: Date | null }, createdBy: string | null, now: Date): Promise<void> {
    return await this.access.run(() => {
      this.access.db.insert(exemptions).values({ id: randomUUID(), userId, ...exemption, expiresAt: exemption.expiresAt?.getTime() ?? null, createdBy, createdAt: now.getTime() }).run()
    })
  }

  async clearDriftFlag (userId: string): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(users).set({ driftFlaggedAt: null }).where(and(eq(users.id, userId), isNotNull(users.driftFlaggedAt))).run().changes === 1
    })
  }

  async update (id: string, input: CampaignInput, now: Date): Promise<Campaign> {
    return await this.access.run(() => {
      const row = this.access.db.update(campaigns).set({
        ...campaignColumns(input),
        updatedAt: now.getTime()
      }).where(eq(campaigns.id, id)).returning().get()
      return this.complete([row])[0]
    })
  }

  async revokeExemption (exemptionId: string, now: Date): Promise<{ userId: string, kind: ExemptionKind, reason: string } | undefined> {
    return await this.access.run(() => {
      // One conditional UPDATE: of two admins revoking at once, one does it and the other is told it has ended.
      return this.access.db.update(exemptions).set({ revokedAt: now.getTime() })
        .where(and(eq(exemptions.id, exemptionId), isNull(exemptions.revokedAt), or(isNull(exemptions.expiresAt), gt(exemptions.expiresAt, now.getTime()))))
        .returning({ userId: exemptions.userId, kind: exemptions.kind, reason: exemptions.reason }).get()
    })
  }

  async listExemptions (status: 'active' | 'ended', now: Date, limit: number): Promise<ExemptionRecord[]> {
    return await this.access.run(() => {
      const creator = alias(users, 'creator')
      const at = now.getTime()
      const active = and(isNull(exemptions.revokedAt), or(isNull(exemptions.expiresAt), gt(exemptions.expiresAt, at)))
      const ended = or(isNotNull(exemptions.revokedAt), lte(exemptions.expiresAt, at))
      const rows = this.access.db.select({
        id: exemptions.id, userId: exemptions.userId, email: users.email, kind: exemptions.kind, reason: exemptions.reason, owner: exemptions.owner,
        expiresAt: exemptions.expiresAt, createdAt: exemptions.createdAt, createdByEmail: creator.email, revokedAt: exemptions.revokedAt
      }).from(exemptions).innerJoin(users, eq(users.id, exemptions.userId)).leftJoin(creator, eq(creator.id, exemptions.createdBy))
        .where(status === 'active' ? active : ended)
        // Active: soonest to expire first (break-glass, which never expires, last). Ended: most recently ended first.
        .orderBy(status === 'active' ? sql`coalesce(${exemptions.expiresAt}, 9e15)` : desc(sql`coalesce(${exemptions.revokedAt}, ${exemptions.expiresAt})`), exemptions.id)
        .limit(limit).all()
      return rows.map((row) => ({
        ...row,
        expiresAt: row.expiresAt === null ? null : new Date(row.expiresAt),
        createdAt: new Date(row.createdAt),
        revokedAt: row.revokedAt === null ? null : new Date(row.revokedAt)
      }))
    })
  }

  async firstSeenAndPrivilege (userId: string): Promise<DeadlineSubject | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select({ firstSeenAt: users.firstSeenAt, directoryCreatedAt: users.directoryCreatedAt, provider: users.provider, privileged: users.privileged, enforcedAt: users.enforcedAt })
        .from(users).where(eq(users.id, userId)).get()
      if (row === undefined) return undefined
      // Who the user is, their groups and when they were flipped: their wave, and which pauses move their deadline.
      const groups = this.access.db.select({ name: userGroups.groupName }).from(userGroups).where(eq(userGroups.userId, userId)).all().map((g) => g.name)
      return {
        firstSeenAt: new Date(row.firstSeenAt), directoryCreatedAt: row.directoryCreatedAt === null ? null : new Date(row.directoryCreatedAt), provider: row.provider, privileged: row.privileged,
        userId, groups, enforcedAt: row.enforcedAt === null ? null : new Date(row.enforcedAt)
      }
    })
  }
}

/** A campaign's settings as columns (create and update write the same ones). */
export function campaignColumns (input: CampaignInput) {
  return {
    name: input.name,
    targetKind: input.targetKind,
    targetValue: input.targetValue,
    startsAt: input.startsAt.getTime(),
    deadline: input.deadline.getTime(),
    privilegedDeadline: input.privilegedDeadline?.getTime() ?? null,
    newUserWindowDays: input.newUserWindowDays,
    reminderOffsets: JSON.stringify(input.reminderOffsets),
    maxExtensionDays: input.maxExtensionDays,
    smsPolicy: input.smsPolicy,
    privilegedMethods: input.privilegedMethods,
    softBlockDays: input.softBlockDays,
    driftPolicy: input.driftPolicy,
    awsPolicyVariant: input.awsPolicyVariant,
    methodsRequired: input.methodsRequired ?? 'one',
    smsSunsetAt: input.smsSunsetAt?.getTime() ?? null,
    smsAfterSunset: input.smsAfterSunset ?? 'excluded',
    smsSunsetGraceDays: input.smsSunsetGraceDays ?? DEFAULT_SMS_SUNSET_GRACE_DAYS,
    // Left out of the input: unchanged on an edit, the defaults (one wave, default thresholds) on creation.
    ...(input.waves === undefined ? {} : { waves: input.waves === null ? null : JSON.stringify(input.waves) }),
    ...(input.breaker === undefined
      ? {}
      : { breakerPassesPer100: input.breaker.passesPer100, breakerFailurePercent: input.breaker.failurePercent, breakerNotMePer100: input.breaker.notMePer100, breakerMinFlips: input.breaker.minFlips })
  }
}

/** A wave start and a pause as a campaign's read aggregates them (in each dialect's JSON). */
export type WaveStartTuple = [wave: number, startedAt: number, startedBy: string | null]
export type PauseTuple = [id: string, pausedAt: number, signal: string, figures: string, resumedAt: number | null, resumedBy: string | null, resumeReason: string | null]

function withHistory (row: Row & { waveStarts: string, pauses: string }): Campaign {
  return campaignWithHistory(row, JSON.parse(row.waveStarts) as WaveStartTuple[], JSON.parse(row.pauses) as PauseTuple[])
}

/** A campaign with its wave starts and pauses as one JSON object (LIVE_CAMPAIGNS_JSON, and PostgreSQL's reads). */
export type CampaignJson = Row & { waveStarts: WaveStartTuple[], pauses: PauseTuple[] }

export function campaignFromJson (row: CampaignJson): Campaign {
  return campaignWithHistory(row, row.waveStarts, row.pauses)
}

/**
 * A campaign's row with its wave starts (put in order of wave) and pauses (put oldest first, ties by id), as the
 * domain's Campaign.
 */
export function campaignWithHistory (row: Row, starts: WaveStartTuple[], pauses: PauseTuple[]): Campaign {
  return {
    ...toCampaign(row),
    waveStarts: starts.sort((a, b) => a[0] - b[0]).map(([wave, at, by]) => ({ wave, at: new Date(at), by })),
    pauses: pauses.sort((a, b) => a[1] - b[1] || textOrder(a[0], b[0])).map(([id, pausedAt, signal, figures, resumedAt, resumedBy, resumeReason]) =>
      toPause({ id, campaignId: row.id, pausedAt, signal, figures, resumedAt, resumedBy, resumeReason }))
  }
}

/** Ids (ASCII) in SQLite's default order for text, by character code: the tie-break the stores' ORDER BYs use. */
export function textOrder (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export function toPause (row: typeof campaignPauses.$inferSelect): CampaignPause {
  return {
    id: row.id,
    campaignId: row.campaignId,
    pausedAt: new Date(row.pausedAt),
    signal: row.signal as BreakerSignal,
    figures: JSON.parse(row.figures) as PauseFigures,
    resumedAt: row.resumedAt === null ? null : new Date(row.resumedAt),
    resumedBy: row.resumedBy,
    resumeReason: row.resumeReason
  }
}

export function toCampaign (row: Row): Campaign {
  return {
    id: row.id,
    name: row.name,
    targetKind: row.targetKind,
    targetValue: row.targetValue,
    startsAt: new Date(row.startsAt),
    deadline: new Date(row.deadline),
    privilegedDeadline: row.privilegedDeadline === null ? null : new Date(row.privilegedDeadline),
    newUserWindowDays: row.newUserWindowDays,
    reminderOffsets: JSON.parse(row.reminderOffsets) as number[],
    maxExtensionDays: row.maxExtensionDays,
    smsPolicy: row.smsPolicy,
    privilegedMethods: row.privilegedMethods,
    softBlockDays: row.softBlockDays,
    driftPolicy: row.driftPolicy,
    awsPolicyVariant: row.awsPolicyVariant,
    methodsRequired: row.methodsRequired,
    smsSunsetAt: row.smsSunsetAt === null ? null : new Date(row.smsSunsetAt),
    smsAfterSunset: row.smsAfterSunset,
    smsSunsetGraceDays: row.smsSunsetGraceDays,
    accessKeyReview: reviewOf(row),
    armedAt: row.armedAt === null ? null : new Date(row.armedAt),
    waves: row.waves === null ? null : JSON.parse(row.waves) as WavePlan,
    waveStarts: [],
    breaker: { passesPer100: row.breakerPassesPer100, failurePercent: row.breakerFailurePercent, notMePer100: row.breakerNotMePer100, minFlips: row.breakerMinFlips },
    pauses: []
  }
}

function reviewOf (row: Row): AccessKeyReview | null {
  if (row.accessKeysReviewedAt === null || row.accessKeysReview === null) return null
  const { variant, keyIds } = JSON.parse(row.accessKeysReview) as { variant: AccessKeyReview['variant'], keyIds: string[] }
  return { variant, keyIds, at: new Date(row.accessKeysReviewedAt), by: row.accessKeysReviewedBy }
}
