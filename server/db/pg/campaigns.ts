import { randomUUID } from 'node:crypto'
import { and, asc, desc, eq, getTableColumns, gt, isNotNull, isNull, lte, or, sql } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { AccessKeyReview } from '../../domain/access-keys.ts'
import type { CampaignInput, CampaignStore, ExemptionKind, ExemptionRecord } from '../../domain/campaigns.ts'
import type { DeadlineSubject } from '../../domain/deadlines.ts'
import type { Campaign } from '../../domain/engine.ts'
import { CAMPAIGN_JSON_PAIRS, campaignColumns, campaignFromJson, type CampaignJson, type PauseTuple, type WaveStartTuple } from '../campaigns.ts'
import type { PgAccess } from './access.ts'
import { campaigns, exemptions, extensions, userGroups, users } from './schema.ts'

type Row = typeof campaigns.$inferSelect

/**
 * A campaign's wave starts and pauses, each as a JSON array of WaveStartTuple and PauseTuple, for the campaign whose
 * id is `campaignId` (a column named in full: drizzle writes a column of the outer table as a bare "id", which inside
 * the pauses' subquery would be the pause's own).
 */
const waveStartsOf = (campaignId: string): string => `coalesce((SELECT json_agg(json_build_array(w.wave, w.started_at, w.started_by) ORDER BY w.wave)
    FROM campaign_wave_starts w WHERE w.campaign_id = ${campaignId}), '[]')`
const pausesOf = (campaignId: string): string => `coalesce((SELECT json_agg(json_build_array(p.id, p.paused_at, p.signal, p.figures, p.resumed_at, p.resumed_by, p.resume_reason)
    ORDER BY p.paused_at, p.id) FROM campaign_pauses p WHERE p.campaign_id = ${campaignId}), '[]')`

/** A campaign's row with its wave starts and pauses. */
const WITH_HISTORY = {
  ...getTableColumns(campaigns),
  waveStarts: sql<WaveStartTuple[]>`${sql.raw(waveStartsOf('campaigns.id'))}`,
  pauses: sql<PauseTuple[]>`${sql.raw(pausesOf('campaigns.id'))}`
}

/**
 * The live campaigns as `list` gives them (newest first, each with its wave starts and pauses), as one JSON array of
 * CampaignJson: for a read that brings them along with something else (the engine's facts read; the home page's session read).
 */
export const LIVE_CAMPAIGNS_JSON = sql<CampaignJson[]>`coalesce((SELECT json_agg(json_build_object(${sql.raw(CAMPAIGN_JSON_PAIRS)},
    'waveStarts', ${sql.raw(waveStartsOf('c.id'))}, 'pauses', ${sql.raw(pausesOf('c.id'))}) ORDER BY c.created_at DESC, c.id)
  FROM campaigns c WHERE c.archived_at IS NULL), '[]')`

export class PgCampaignStore implements CampaignStore {
  // Read often (every state refresh and sweep, the consoles), with the wave starts and pauses in the same query:
  // prepared once per connection (PgAccess.preparedRead).
  private readonly active
  private readonly byId

  constructor (private readonly access: PgAccess) {
    this.active = access.preparedRead('active_campaigns', (db) =>
      db.select(WITH_HISTORY).from(campaigns).where(isNull(campaigns.archivedAt)).orderBy(desc(campaigns.createdAt), asc(campaigns.id)))
    this.byId = access.preparedRead('campaign_by_id', (db, id) => db.select(WITH_HISTORY).from(campaigns).where(eq(campaigns.id, id)))
  }

  async create (input: CampaignInput, createdBy: string | null, now: Date): Promise<Campaign> {
    const [row] = await this.access.current.insert(campaigns).values({
      id: randomUUID(),
      ...campaignColumns(input),
      createdBy,
      createdAt: now.getTime(),
      updatedAt: now.getTime()
    }).returning()
    return (await this.complete([row]))[0]
  }

  async find (id: string): Promise<Campaign | undefined> {
    const [row] = await this.byId(id)
    return row === undefined ? undefined : campaignFromJson(row)
  }

  async list (): Promise<Campaign[]> {
    // The read takes no value: the one it is given is not used.
    return (await this.active('')).map(campaignFromJson)
  }

  /** Campaigns just written, as the rest of the portal sees them: with their wave starts and pauses. */
  private async complete (rows: Row[]): Promise<Campaign[]> {
    return await Promise.all(rows.map(async (row) => (await this.find(row.id))!))
  }

  async confirmAccessKeys (id: string, review: AccessKeyReview, now: Date): Promise<Campaign> {
    const [row] = await this.access.current.update(campaigns).set({
      awsPolicyVariant: review.variant,
      accessKeysReviewedAt: review.at.getTime(),
      accessKeysReviewedBy: review.by,
      accessKeysReview: JSON.stringify({ variant: review.variant, keyIds: review.keyIds }),
      updatedAt: now.getTime()
    }).where(eq(campaigns.id, id)).returning()
    return (await this.complete([row]))[0]
  }

  async setArmed (id: string, armedAt: Date | null, armedBy: string | null, now: Date): Promise<void> {
    await this.access.current.update(campaigns).set({ armedAt: armedAt?.getTime() ?? null, armedBy, updatedAt: now.getTime() }).where(eq(campaigns.id, id))
  }

  async addExtension (userId: string, campaignId: string, days: number, reason: string, approvedBy: string | null, now: Date): Promise<void> {
    await this.access.current.insert(extensions).values({ id: randomUUID(), userId, campaignId, days, reason, approvedBy, createdAt: now.getTime() })
  }

  async extensionsFor (userId: string): Promise<Array<{ campaignId: string, days: number }>> {
    return await this.access.current.select({ campaignId: extensions.campaignId, days: extensions.days }).from(extensions).where(eq(extensions.userId, userId))
  }

  async addExemption (userId: string, exemption: { kind: 'break_glass' | 'service_account' | 'other', reason: string, owner: string, expiresAt: Date | null }, createdBy: string | null, now: Date): Promise<void> {
    await this.access.current.insert(exemptions).values({ id: randomUUID(), userId, ...exemption, expiresAt: exemption.expiresAt?.getTime() ?? null, createdBy, createdAt: now.getTime() })
  }

  async clearDriftFlag (userId: string): Promise<boolean> {
    const cleared = await this.access.current.update(users).set({ driftFlaggedAt: null }).where(and(eq(users.id, userId), isNotNull(users.driftFlaggedAt)))
    return cleared.rowCount === 1
  }

  async update (id: string, input: CampaignInput, now: Date): Promise<Campaign> {
    const [row] = await this.access.current.update(campaigns).set({
      ...campaignColumns(input),
      updatedAt: now.getTime()
    }).where(eq(campaigns.id, id)).returning()
    return (await this.complete([row]))[0]
  }

  async revokeExemption (exemptionId: string, now: Date): Promise<{ userId: string, kind: ExemptionKind, reason: string } | undefined> {
    // One conditional UPDATE: of two admins revoking at once, one does it and the other is told it has ended.
    const [revoked] = await this.access.current.update(exemptions).set({ revokedAt: now.getTime() })
      .where(and(eq(exemptions.id, exemptionId), isNull(exemptions.revokedAt), or(isNull(exemptions.expiresAt), gt(exemptions.expiresAt, now.getTime()))))
      .returning({ userId: exemptions.userId, kind: exemptions.kind, reason: exemptions.reason })
    return revoked
  }

  async listExemptions (status: 'active' | 'ended', now: Date, limit: number): Promise<ExemptionRecord[]> {
    const creator = alias(users, 'creator')
    const at = now.getTime()
    const active = and(isNull(exemptions.revokedAt), or(isNull(exemptions.expiresAt), gt(exemptions.expiresAt, at)))
    const ended = or(isNotNull(exemptions.revokedAt), lte(exemptions.expiresAt, at))
    const rows = await this.access.current.select({
      id: exemptions.id, userId: exemptions.userId, email: users.email, kind: exemptions.kind, reason: exemptions.reason, owner: exemptions.owner,
      expiresAt: exemptions.expiresAt, createdAt: exemptions.createdAt, createdByEmail: creator.email, revokedAt: exemptions.revokedAt
    }).from(exemptions).innerJoin(users, eq(users.id, exemptions.userId)).leftJoin(creator, eq(creator.id, exemptions.createdBy))
      .where(status === 'active' ? active : ended)
      // Active: soonest to expire first (break-glass, which never expires, last). Ended: most recently ended first.
      .orderBy(status === 'active' ? sql`${exemptions.expiresAt} ASC NULLS LAST` : desc(sql`coalesce(${exemptions.revokedAt}, ${exemptions.expiresAt})`), exemptions.id)
      .limit(limit)
    return rows.map((row) => ({
      ...row,
      expiresAt: row.expiresAt === null ? null : new Date(row.expiresAt),
      createdAt: new Date(row.createdAt),
      revokedAt: row.revokedAt === null ? null : new Date(row.revokedAt)
    }))
  }

  async firstSeenAndPrivilege (userId: string): Promise<DeadlineSubject | undefined> {
    const [row] = await this.access.current.select({ firstSeenAt: users.firstSeenAt, directoryCreatedAt: users.directoryCreatedAt, provider: users.provider, privileged: users.privileged, enforcedAt: users.enforcedAt })
      .from(users).where(eq(users.id, userId))
    if (row === undefined) return undefined
    // Who the user is, their groups and when they were flipped: their wave, and which pauses move their deadline.
    const groups = (await this.access.current.select({ name: userGroups.groupName }).from(userGroups).where(eq(userGroups.userId, userId))).map((g) => g.name)
    return {
      firstSeenAt: new Date(row.firstSeenAt), directoryCreatedAt: row.directoryCreatedAt === null ? null : new Date(row.directoryCreatedAt), provider: row.provider, privileged: row.privileged,
      userId, groups, enforcedAt: row.enforcedAt === null ? null : new Date(row.enforcedAt)
    }
  }
}
