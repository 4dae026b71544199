import { randomUUID } from 'node:crypto'
import { and, asc, desc, eq, gt, isNotNull, isNull, lte, or, sql } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { AccessKeyReview } from '../../domain/access-keys.ts'
import type { CampaignInput, CampaignStore, ExemptionKind, ExemptionRecord } from '../../domain/campaigns.ts'
import type { DeadlineSubject } from '../../domain/deadlines.ts'
import type { Campaign } from '../../domain/engine.ts'
import type { WaveStart } from '../../domain/waves.ts'
import { campaignColumns, toCampaign, toPause } from '../campaigns.ts'
import type { PgAccess } from './access.ts'
import { campaignPauses, campaignWaveStarts, campaigns, exemptions, extensions, userGroups, users } from './schema.ts'

type Row = typeof campaigns.$inferSelect

export class PgCampaignStore implements CampaignStore {
  constructor (private readonly access: PgAccess) {}

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
    const [row] = await this.access.current.select().from(campaigns).where(eq(campaigns.id, id))
    return row === undefined ? undefined : (await this.complete([row]))[0]
  }

  async list (): Promise<Campaign[]> {
    return await this.complete(await this.access.current.select().from(campaigns).where(isNull(campaigns.archivedAt)).orderBy(desc(campaigns.createdAt)))
  }

  /** The rows as campaigns, with their wave starts and pauses (two small reads, whatever the number of campaigns). */
  private async complete (rows: Row[]): Promise<Campaign[]> {
    if (rows.length === 0) return []
    // Wave starts and pauses are a handful of rows per campaign: read whole, matched here.
    const starts = await this.access.current.select().from(campaignWaveStarts)
    const pauses = await this.access.current.select().from(campaignPauses).orderBy(asc(campaignPauses.pausedAt))
    return rows.map((row) => ({
      ...toCampaign(row),
      waveStarts: starts.filter((s) => s.campaignId === row.id).map((s): WaveStart => ({ wave: s.wave, at: new Date(s.startedAt), by: s.startedBy })).sort((a, b) => a.wave - b.wave),
      pauses: pauses.filter((p) => p.campaignId === row.id).map(toPause)
    }))
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
