import { and, eq, gt, isNull } from 'drizzle-orm'
import type { Invitation, InvitationStore } from '../domain/invitations.ts'
import { invitations } from './schema.ts'
import type { SqliteAccess } from './sqlite-access.ts'

export class SqliteInvitationStore implements InvitationStore {
  constructor (private readonly access: SqliteAccess) {}

  async replace (invitation: Omit<Invitation, 'usedAt'> & { tokenHash: string }): Promise<void> {
    return await this.access.run(() => {
      const now = invitation.createdAt.getTime()
      this.access.db.transaction((tx) => {
        // Earlier unused links stop working the moment a new one is issued (the row stays for the record).
        tx.update(invitations).set({ expiresAt: now })
          .where(and(eq(invitations.userId, invitation.userId), isNull(invitations.usedAt), gt(invitations.expiresAt, now))).run()
        tx.insert(invitations).values({
          id: invitation.id,
          userId: invitation.userId,
          tokenHash: invitation.tokenHash,
          createdBy: invitation.createdBy,
          createdAt: now,
          expiresAt: invitation.expiresAt.getTime()
        }).run()
      })
    })
  }

  async findByTokenHash (tokenHash: string): Promise<Invitation | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(invitations).where(eq(invitations.tokenHash, tokenHash)).get()
      if (row === undefined) return undefined
      return {
        id: row.id,
        userId: row.userId,
        createdBy: row.createdBy,
        createdAt: new Date(row.createdAt),
        expiresAt: new Date(row.expiresAt),
        usedAt: row.usedAt === null ? null : new Date(row.usedAt)
      }
    })
  }

  async consume (id: string, now: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(invitations).set({ usedAt: now.getTime() })
        .where(and(eq(invitations.id, id), isNull(invitations.usedAt), gt(invitations.expiresAt, now.getTime()))).run().changes === 1
    })
  }

  async expire (id: string, now: Date): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(invitations).set({ expiresAt: now.getTime() }).where(and(eq(invitations.id, id), isNull(invitations.usedAt))).run()
    })
  }
}
