import { randomUUID } from 'node:crypto'
import { and, eq, isNull } from 'drizzle-orm'
import type { RecoveryNotice, RecoveryNoticeStore } from '../../domain/recovery-codes.ts'
import type { PgAccess } from './access.ts'
import { recoveryCodeNotices } from './schema.ts'

type Row = typeof recoveryCodeNotices.$inferSelect

/** The "This wasn't me" links of recovery-code e-mails; tokens only as keyed hashes. */
export class PgRecoveryNoticeStore implements RecoveryNoticeStore {
  constructor (private readonly access: PgAccess) {}

  async create (notice: { userId: string, tokenHash: string, usedCodeAt: Date, expiresAt: Date }): Promise<RecoveryNotice> {
    const [row] = await this.access.current.insert(recoveryCodeNotices).values({
      id: randomUUID(), userId: notice.userId, tokenHash: notice.tokenHash, usedCodeAt: notice.usedCodeAt.getTime(), expiresAt: notice.expiresAt.getTime()
    }).returning()
    return toNotice(row)
  }

  async findByTokenHash (tokenHash: string): Promise<RecoveryNotice | undefined> {
    const [row] = await this.access.current.select().from(recoveryCodeNotices).where(eq(recoveryCodeNotices.tokenHash, tokenHash))
    return row === undefined ? undefined : toNotice(row)
  }

  async claim (id: string, at: Date): Promise<boolean> {
    const claimed = await this.access.current.update(recoveryCodeNotices).set({ usedAt: at.getTime() })
      .where(and(eq(recoveryCodeNotices.id, id), isNull(recoveryCodeNotices.usedAt)))
    return claimed.rowCount === 1
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
