import { randomUUID } from 'node:crypto'
import { and, count, eq, isNull, sql } from 'drizzle-orm'
import type { RecoveryCodeStore } from '../domain/recovery-codes.ts'
import type { Db } from './connection.ts'
import { recoveryCodes } from './schema.ts'

export class SqliteRecoveryCodeStore implements RecoveryCodeStore {
  // Counted on every home page of a local user: prepared once.
  private readonly unused

  constructor (private readonly db: Db) {
    this.unused = db.select({ n: count() }).from(recoveryCodes)
      .where(and(eq(recoveryCodes.userId, sql.placeholder('userId')), isNull(recoveryCodes.usedAt), isNull(recoveryCodes.voidedAt))).prepare()
  }

  replace (userId: string, setId: string, hashes: string[], at: Date): number {
    return this.db.transaction((tx) => {
      const voided = tx.update(recoveryCodes).set({ voidedAt: at.getTime() })
        .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.voidedAt), isNull(recoveryCodes.usedAt))).run().changes
      // Used codes of the old set are closed too, so "remaining" only ever counts the current set.
      tx.update(recoveryCodes).set({ voidedAt: at.getTime() }).where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.voidedAt))).run()
      // No new hashes: the set is only voided (a helpdesk reset).
      if (hashes.length > 0) tx.insert(recoveryCodes).values(hashes.map((codeHash) => ({ id: randomUUID(), userId, setId, codeHash, createdAt: at.getTime() }))).run()
      return voided
    })
  }

  consume (userId: string, codeHash: string, at: Date): boolean {
    return this.db.update(recoveryCodes).set({ usedAt: at.getTime() })
      .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, codeHash), isNull(recoveryCodes.usedAt), isNull(recoveryCodes.voidedAt)))
      .run().changes > 0
  }

  remaining (userId: string): number {
    return this.unused.get({ userId })?.n ?? 0
  }

  hasEverHad (userId: string): boolean {
    return this.db.select({ id: recoveryCodes.id }).from(recoveryCodes).where(eq(recoveryCodes.userId, userId)).limit(1).get() !== undefined
  }
}
