import { randomUUID } from 'node:crypto'
import { and, count, eq, isNull, sql } from 'drizzle-orm'
import type { RecoveryCodeStore } from '../domain/recovery-codes.ts'
import { recoveryCodes } from './schema.ts'
import type { SqliteAccess } from './sqlite-access.ts'

export class SqliteRecoveryCodeStore implements RecoveryCodeStore {
  // Counted on every home page of a local user: prepared once.
  private readonly unused

  constructor (private readonly access: SqliteAccess) {
    const { db } = access
    this.unused = db.select({ n: count() }).from(recoveryCodes)
      .where(and(eq(recoveryCodes.userId, sql.placeholder('userId')), isNull(recoveryCodes.usedAt), isNull(recoveryCodes.voidedAt))).prepare()
  }

  async replace (userId: string, setId: string, hashes: string[], at: Date): Promise<number> {
    return await this.access.run(() => {
      return this.access.db.transaction((tx) => {
        const voided = tx.update(recoveryCodes).set({ voidedAt: at.getTime() })
          .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.voidedAt), isNull(recoveryCodes.usedAt))).run().changes
        // Used codes of the old set are closed too, so "remaining" only ever counts the current set.
        tx.update(recoveryCodes).set({ voidedAt: at.getTime() }).where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.voidedAt))).run()
        // No new hashes: the set is only voided (a helpdesk reset).
        if (hashes.length > 0) tx.insert(recoveryCodes).values(hashes.map((codeHash) => ({ id: randomUUID(), userId, setId, codeHash, createdAt: at.getTime() }))).run()
        return voided
      })
    })
  }

  async consume (userId: string, codeHash: string, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(recoveryCodes).set({ usedAt: at.getTime() })
        .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, codeHash), isNull(recoveryCodes.usedAt), isNull(recoveryCodes.voidedAt)))
        .run().changes > 0
    })
  }

  async remaining (userId: string): Promise<number> {
    return await this.access.run(() => {
      return this.unused.get({ userId })?.n ?? 0
    })
  }

  async hasEverHad (userId: string): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.select({ id: recoveryCodes.id }).from(recoveryCodes).where(eq(recoveryCodes.userId, userId)).limit(1).get() !== undefined
    })
  }
}
