import { randomUUID } from 'node:crypto'
import { and, desc, eq, isNotNull, isNull } from 'drizzle-orm'
import type { CampaignInput, CampaignStore } from '../domain/campaigns.ts'
import type { Campaign } from '../domain/engine.ts'
import type { Db } from './connection.ts'
import { campaigns, exemptions, extensions, users } from './schema.ts'

type Row = typeof campaigns.$inferSelect

export class SqliteCampaignStore implements CampaignStore {
  constructor (private readonly db: Db) {}

  create (input: CampaignInput, createdBy: string | null, now: Date): Campaign {
    const row = this.db.insert(campaigns).values({
      id: randomUUID(),
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
      createdBy,
      createdAt: now.getTime(),
      updatedAt: now.getTime()
    }).returning().get()
    return toCampaign(row)
  }

  find (id: string): Campaign | undefined {
    const row = this.db.select().from(campaigns).where(eq(campaigns.id, id)).get()
    return row === undefined ? undefined : toCampaign(row)
  }

  list (): Campaign[] {
    return this.db.select().from(campaigns).where(isNull(campaigns.archivedAt)).orderBy(desc(campaigns.createdAt)).all().map(toCampaign)
  }

  setArmed (id: string, armedAt: Date | null, armedBy: string | null, now: Date): void {
    this.db.update(campaigns).set({ armedAt: armedAt?.getTime() ?? null, armedBy, updatedAt: now.getTime() }).where(eq(campaigns.id, id)).run()
  }

  addExtension (userId: string, campaignId: string, days: number, reason: string, approvedBy: string | null, now: Date): void {
    this.db.insert(extensions).values({ id: randomUUID(), userId, campaignId, days, reason, approvedBy, createdAt: now.getTime() }).run()
  }

  extensionsFor (userId: string): Array<{ campaignId: string, days: number }> {
    return this.db.select({ campaignId: extensions.campaignId, days: extensions.days }).from(extensions).where(eq(extensions.userId, userId)).all()
  }

  addExemption (userId: string, exemption: { kind: 'break_glass' | 'service_account' | 'other', reason: string, owner: string, expiresAt: Date | null }, createdBy: string | null, now: Date): void {
    this.db.insert(exemptions).values({ id: randomUUID(), userId, ...exemption, expiresAt: exemption.expiresAt?.getTime() ?? null, createdBy, createdAt: now.getTime() }).run()
  }

  clearDriftFlag (userId: string): boolean {
    return this.db.update(users).set({ driftFlaggedAt: null }).where(and(eq(users.id, userId), isNotNull(users.driftFlaggedAt))).run().changes === 1
  }

  firstSeenAndPrivilege (userId: string): { firstSeenAt: Date, privileged: boolean } | undefined {
    const row = this.db.select({ firstSeenAt: users.firstSeenAt, privileged: users.privileged }).from(users).where(eq(users.id, userId)).get()
    return row === undefined ? undefined : { firstSeenAt: new Date(row.firstSeenAt), privileged: row.privileged }
  }
}

function toCampaign (row: Row): Campaign {
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
    armedAt: row.armedAt === null ? null : new Date(row.armedAt)
  }
}
