import { randomUUID } from 'node:crypto'
import { and, desc, eq, gt, isNull, lte } from 'drizzle-orm'
import type { AccessPassRecord, AccessPassStore } from '../domain/passes.ts'
import type { ChallengePurpose, ChallengeStore } from '../domain/passkeys.ts'
import type { MethodNotice, NoticeStore } from '../domain/method-lifecycle.ts'
import type { Outbox, OutboxMessage } from '../domain/notifications.ts'
import type { SqliteAccess } from './sqlite-access.ts'
import { accessPasses, methodNotices, outbox, webauthnChallenges } from './schema.ts'

export class SqliteChallengeStore implements ChallengeStore {
  constructor (private readonly access: SqliteAccess) {}

  async create (purpose: ChallengePurpose, userId: string | null, challenge: string, expiresAt: Date): Promise<string> {
    return await this.access.run(() => {
      const id = randomUUID()
      this.access.db.insert(webauthnChallenges).values({ id, purpose, userId, challenge, expiresAt: expiresAt.getTime() }).run()
      return id
    })
  }

  async claim (id: string, purpose: ChallengePurpose, userId: string | null, now: Date): Promise<string | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.update(webauthnChallenges).set({ consumedAt: now.getTime() })
        .where(and(
          eq(webauthnChallenges.id, id), eq(webauthnChallenges.purpose, purpose), isNull(webauthnChallenges.consumedAt),
          gt(webauthnChallenges.expiresAt, now.getTime()),
          userId === null ? isNull(webauthnChallenges.userId) : eq(webauthnChallenges.userId, userId)
        ))
        .returning({ challenge: webauthnChallenges.challenge }).get()
      return row?.challenge
    })
  }

  async purge (now: Date): Promise<number> {
    return await this.access.run(() => {
      return this.access.db.delete(webauthnChallenges).where(lte(webauthnChallenges.expiresAt, now.getTime())).run().changes
    })
  }
}

export class SqliteNoticeStore implements NoticeStore {
  constructor (private readonly access: SqliteAccess) {}

  async create (notice: Omit<MethodNotice, 'id' | 'usedAt'> & { tokenHash: string }): Promise<MethodNotice> {
    return await this.access.run(() => {
      const id = randomUUID()
      this.access.db.insert(methodNotices).values({ ...notice, id, expiresAt: notice.expiresAt.getTime() }).run()
      return { ...notice, id, usedAt: null }
    })
  }

  async findByTokenHash (tokenHash: string): Promise<MethodNotice | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(methodNotices).where(eq(methodNotices.tokenHash, tokenHash)).get()
      if (row === undefined) return undefined
      return { id: row.id, userId: row.userId, methodId: row.methodId, methodName: row.methodName, change: row.change, expiresAt: new Date(row.expiresAt), usedAt: row.usedAt === null ? null : new Date(row.usedAt) }
    })
  }

  async claim (id: string, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(methodNotices).set({ usedAt: at.getTime() }).where(and(eq(methodNotices.id, id), isNull(methodNotices.usedAt))).run().changes === 1
    })
  }
}

export class SqliteAccessPassStore implements AccessPassStore {
  constructor (private readonly access: SqliteAccess) {}

  async replace (pass: Omit<AccessPassRecord, 'usedAt'> & { createdBy: string | null, createdAt: Date }): Promise<void> {
    return await this.access.run(() => {
      this.access.db.transaction((tx) => {
        tx.update(accessPasses).set({ revokedAt: pass.createdAt.getTime() }).where(and(eq(accessPasses.userId, pass.userId), isNull(accessPasses.revokedAt))).run()
        tx.insert(accessPasses).values({ ...pass, expiresAt: pass.expiresAt.getTime(), createdAt: pass.createdAt.getTime() }).run()
      })
    })
  }

  async activeFor (userId: string, now: Date): Promise<AccessPassRecord | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(accessPasses)
        .where(and(eq(accessPasses.userId, userId), isNull(accessPasses.revokedAt), isNull(accessPasses.usedAt), gt(accessPasses.expiresAt, now.getTime())))
        .orderBy(desc(accessPasses.createdAt)).get()
      if (row === undefined) return undefined
      return { id: row.id, userId: row.userId, passHash: row.passHash, oneTime: row.oneTime, expiresAt: new Date(row.expiresAt), usedAt: null }
    })
  }

  async consume (id: string, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(accessPasses).set({ usedAt: at.getTime() }).where(and(eq(accessPasses.id, id), isNull(accessPasses.usedAt))).run().changes === 1
    })
  }
}

/** The sandbox outbox: messages kept instead of sent. Readable by admins only. */
export class SqliteOutbox implements Outbox {
  constructor (private readonly access: SqliteAccess) {}

  async add (message: Omit<OutboxMessage, 'id' | 'createdAt'>, at: Date): Promise<void> {
    return await this.access.run(() => {
      this.access.db.insert(outbox).values({ ...message, createdAt: at.getTime() }).run()
    })
  }

  async latest (limit = 100): Promise<OutboxMessage[]> {
    return await this.access.run(() => {
      return this.access.db.select().from(outbox).orderBy(desc(outbox.id)).limit(limit).all().map((row) => ({ ...row, createdAt: new Date(row.createdAt) }))
    })
  }
}
