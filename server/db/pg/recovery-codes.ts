import { randomUUID } from 'node:crypto'
import { and, count, eq, isNull, sql } from 'drizzle-orm'
import type { RecoveryCodeStore } from '../../domain/recovery-codes.ts'
import type { PgAccess } from './access.ts'
import { recoveryCodes } from './schema.ts'

export class PgRecoveryCodeStore implements RecoveryCodeStore {
  constructor (private readonly access: PgAccess) {}

  async replace (userId: string, setId: string, hashes: string[], at: Date): Promise<number> {
    return await this.access.transaction(async () => {
      const db = this.access.current
      // Two replacements for one user at once (two instances) would each void only the codes they can see and
      // leave two current sets: they take turns on a lock per user.
      await db.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${'recovery-codes:' + userId}, 0))`)
      const voided = await db.update(recoveryCodes).set({ voidedAt: at.getTime() })
        .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.voidedAt), isNull(recoveryCodes.usedAt)))
      // Used codes of the old set are closed too, so "remaining" only ever counts the current set.
      await db.update(recoveryCodes).set({ voidedAt: at.getTime() }).where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.voidedAt)))
      // No new hashes: the set is only voided (a helpdesk reset).
      if (hashes.length > 0) await db.insert(recoveryCodes).values(hashes.map((codeHash) => ({ id: randomUUID(), userId, setId, codeHash, createdAt: at.getTime() })))
      return voided.rowCount ?? 0
    })
  }

  async consume (userId: string, codeHash: string, at: Date): Promise<boolean> {
    const used = await this.access.current.update(recoveryCodes).set({ usedAt: at.getTime() })
      .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, codeHash), isNull(recoveryCodes.usedAt), isNull(recoveryCodes.voidedAt)))
    return (used.rowCount ?? 0) > 0
  }

  async remaining (userId: string): Promise<number> {
    const [row] = await this.access.current.select({ n: count() }).from(recoveryCodes)
      .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt), isNull(recoveryCodes.voidedAt)))
    return row?.n ?? 0
  }

  async hasEverHad (userId: string): Promise<boolean> {
    const rows = await this.access.current.select({ id: recoveryCodes.id }).from(recoveryCodes).where(eq(recoveryCodes.userId, userId)).limit(1)
    return rows.length > 0
  }
}
