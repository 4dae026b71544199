import { and, eq, gt, isNull, sql } from 'drizzle-orm'
import type { Invitation, InvitationStore } from '../../domain/invitations.ts'
import type { PgAccess } from './access.ts'
import { invitations } from './schema.ts'

export class PgInvitationStore implements InvitationStore {
  constructor (private readonly access: PgAccess) {}

  async replace (invitation: Omit<Invitation, 'usedAt'> & { tokenHash: string }): Promise<void> {
    const now = invitation.createdAt.getTime()
    await this.access.transaction(async () => {
      const db = this.access.current
      // Two invitations issued at once (two instances) would not see each other's new row and both stay usable:
      // they take turns on a lock per user, so the later one ends the earlier.
      await db.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${'invitations:' + invitation.userId}, 0))`)
      // Earlier unused links stop working the moment a new one is issued (the row stays for the record).
      await db.update(invitations).set({ expiresAt: now })
        .where(and(eq(invitations.userId, invitation.userId), isNull(invitations.usedAt), gt(invitations.expiresAt, now)))
      await db.insert(invitations).values({
        id: invitation.id,
        userId: invitation.userId,
        tokenHash: invitation.tokenHash,
        createdBy: invitation.createdBy,
        createdAt: now,
        expiresAt: invitation.expiresAt.getTime()
      })
    })
  }

  async findByTokenHash (tokenHash: string): Promise<Invitation | undefined> {
    const [row] = await this.access.current.select().from(invitations).where(eq(invitations.tokenHash, tokenHash))
    if (row === undefined) return undefined
    return {
      id: row.id,
      userId: row.userId,
      createdBy: row.createdBy,
      createdAt: new Date(row.createdAt),
      expiresAt: new Date(row.expiresAt),
      usedAt: row.usedAt === null ? null : new Date(row.usedAt)
    }
  }

  async consume (id: string, now: Date): Promise<boolean> {
    const used = await this.access.current.update(invitations).set({ usedAt: now.getTime() })
      .where(and(eq(invitations.id, id), isNull(invitations.usedAt), gt(invitations.expiresAt, now.getTime())))
    return used.rowCount === 1
  }

  async expire (id: string, now: Date): Promise<void> {
    await this.access.current.update(invitations).set({ expiresAt: now.getTime() }).where(and(eq(invitations.id, id), isNull(invitations.usedAt)))
  }
}
