import { randomUUID } from 'node:crypto'
import { and, eq, isNull } from 'drizzle-orm'
import type { RecoveryNotice, RecoveryNoticeStore } from '../domain/recovery-codes.ts'
import { recoveryCodeNotices } from './schema.ts'
import type { SqliteAccess } from './sqlite-access.ts'

type Row = typeof recoveryCodeNotices.$inferSelect

/** The "This wasn't me" links of recovery-code e-mails; tokens only as keyed hashes. */
export class SqliteRecoveryNoticeStore implements RecoveryNoticeStore {
  constructor (private readonly access: SqliteAccess) {}

  async create (notice: { userId: string, tokenHash: string, usedCodeAt: Date, expiresAt: Date }): Promise<RecoveryNotice> {
    return await this.access.run(() => {
      const row = this.access.db.insert(recoveryCodeNotices).values({
        id: randomUUID(), userId: notice.userId, tokenHash: notice.tokenHash, usedCodeAt: notice.usedCodeAt.getTime(), expiresAt: notice.expiresAt.getTime()
      }).returning().get()
      return toNotice(row)
    })
  }

  async findByTokenHash (tokenHash: string): Promise<RecoveryNotice | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(recoveryCodeNotices).where(eq(recoveryCodeNotices.tokenHash, tokenHash)).get()
      return row === undefined ? undefined : toNotice(row)
    })
  }

  async claim (id: string, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(recoveryCodeNotices).set({ usedAt: at.getTime() })
        .where(and(eq(recoveryCodeNotices.id, id), isNull(recoveryCodeNotices.usedAt))).run().changes === 1
    })
  }
}

function toNotice (row: Row): RecoveryNotice {
  return {
    id: row.id,
    userId: row.userId,
    usedCodeAt: new Date(row.usedCodeAt),
    expiresAt: new Date(row.expiresAt),
    usedAt: row.usedAt === null ? null : new Date(row.usedAt)
  }
}
