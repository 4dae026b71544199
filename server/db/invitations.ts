import { and, eq, gt, isNull } from 'drizzle-orm'
import type { Invitation, InvitationStore } from '../domain/invitations.ts'
import type { Db } from './connection.ts'
import { invitations } from './schema.ts'

export class SqliteInvitationStore implements InvitationStore {
  constructor (private readonly db: Db) {}

  replace (invitation: Omit<Invitation, 'usedAt'> & { tokenHash: string }): void {
    const now = invitation.createdAt.getTime()
    this.db.transaction((tx) => {
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
  }

  findByTokenHash (tokenHash: string): Invitation | undefined {
    const row = this.db.select().from(invitations).where(eq(invitations.tokenHash, tokenHash)).get()
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

  consume (id: string, now: Date): boolean {
    return this.db.update(invitations).set({ usedAt: now.getTime() })
      .where(and(eq(invitations.id, id), isNull(invitations.usedAt), gt(invitations.expiresAt, now.getTime()))).run().changes === 1
  }

  expire (id: string, now: Date): void {
    this.db.update(invitations).set({ expiresAt: now.getTime() }).where(and(eq(invitations.id, id), isNull(invitations.usedAt))).run()
  }
}
