import { randomUUID } from 'node:crypto'
import { and, desc, eq, gt, isNull, lte, sql } from 'drizzle-orm'
import type { AccessPassRecord, AccessPassStore } from '../../domain/passes.ts'
import type { ChallengePurpose, ChallengeStore } from '../../domain/passkeys.ts'
import type { MethodNotice, NoticeStore } from '../../domain/method-lifecycle.ts'
import type { Outbox, OutboxMessage } from '../../domain/notifications.ts'
import type { PgAccess } from './access.ts'
import { accessPasses, methodNotices, outbox, webauthnChallenges } from './schema.ts'

export class PgChallengeStore implements ChallengeStore {
  constructor (private readonly access: PgAccess) {}

  async create (purpose: ChallengePurpose, userId: string | null, challenge: string, expiresAt: Date): Promise<string> {
    const id = randomUUID()
    await this.access.current.insert(webauthnChallenges).values({ id, purpose, userId, challenge, expiresAt: expiresAt.getTime() })
    return id
  }

  /** One conditional UPDATE: a challenge is handed out once, whichever instances ask for it. */
  async claim (id: string, purpose: ChallengePurpose, userId: string | null, now: Date): Promise<string | undefined> {
    const [row] = await this.access.current.update(webauthnChallenges).set({ consumedAt: now.getTime() })
      .where(and(
        eq(webauthnChallenges.id, id), eq(webauthnChallenges.purpose, purpose), isNull(webauthnChallenges.consumedAt),
        gt(webauthnChallenges.expiresAt, now.getTime()),
        userId === null ? isNull(webauthnChallenges.userId) : eq(webauthnChallenges.userId, userId)
      ))
      .returning({ challenge: webauthnChallenges.challenge })
    return row?.challenge
  }

  async purge (now: Date): Promise<number> {
    const removed = await this.access.current.delete(webauthnChallenges).where(lte(webauthnChallenges.expiresAt, now.getTime()))
    return removed.rowCount ?? 0
  }
}

export class PgNoticeStore implements NoticeStore {
  constructor (private readonly access: PgAccess) {}

  async create (notice: Omit<MethodNotice, 'id' | 'usedAt'> & { tokenHash: string }): Promise<MethodNotice> {
    const id = randomUUID()
    await this.access.current.insert(methodNotices).values({ ...notice, id, expiresAt: notice.expiresAt.getTime() })
    return { ...notice, id, usedAt: null }
  }

  async findByTokenHash (tokenHash: string): Promise<MethodNotice | undefined> {
    const [row] = await this.access.current.select().from(methodNotices).where(eq(methodNotices.tokenHash, tokenHash))
    if (row === undefined) return undefined
    return { id: row.id, userId: row.userId, methodId: row.methodId, methodName: row.methodName, change: row.change, expiresAt: new Date(row.expiresAt), usedAt: row.usedAt === null ? null : new Date(row.usedAt) }
  }

  /** One conditional UPDATE: a notice link works once, whichever instances it reaches. */
  async claim (id: string, at: Date): Promise<boolean> {
    const claimed = await this.access.current.update(methodNotices).set({ usedAt: at.getTime() }).where(and(eq(methodNotices.id, id), isNull(methodNotices.usedAt)))
    return claimed.rowCount === 1
  }
}

export class PgAccessPassStore implements AccessPassStore {
  constructor (private readonly access: PgAccess) {}

  /**
   * Revokes the user's earlier passes and stores the new one, under a lock on the user's passes: two passes issued
   * at once on different instances leave one active, as on SQLite.
   */
  async replace (pass: Omit<AccessPassRecord, 'usedAt'> & { createdBy: string | null, createdAt: Date }): Promise<void> {
    await this.access.transaction(async () => {
      const db = this.access.current
      await db.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`access-pass:${pass.userId}`}, 0))`)
      await db.update(accessPasses).set({ revokedAt: pass.createdAt.getTime() }).where(and(eq(accessPasses.userId, pass.userId), isNull(accessPasses.revokedAt)))
      await db.insert(accessPasses).values({ ...pass, expiresAt: pass.expiresAt.getTime(), createdAt: pass.createdAt.getTime() })
    })
  }

  async activeFor (userId: string, now: Date): Promise<AccessPassRecord | undefined> {
    const [row] = await this.access.current.select().from(accessPasses)
      .where(and(eq(accessPasses.userId, userId), isNull(accessPasses.revokedAt), isNull(accessPasses.usedAt), gt(accessPasses.expiresAt, now.getTime())))
      .orderBy(desc(accessPasses.createdAt)).limit(1)
    if (row === undefined) return undefined
    return { id: row.id, userId: row.userId, passHash: row.passHash, oneTime: row.oneTime, expiresAt: new Date(row.expiresAt), usedAt: null }
  }

  /** One conditional UPDATE: of sign-ins with the same one-time pass on any instances, exactly one uses it. */
  async consume (id: string, at: Date): Promise<boolean> {
    const consumed = await this.access.current.update(accessPasses).set({ usedAt: at.getTime() }).where(and(eq(accessPasses.id, id), isNull(accessPasses.usedAt)))
    return consumed.rowCount === 1
  }
}

/** The sandbox outbox: messages kept instead of sent. Readable by admins only. */
export class PgOutbox implements Outbox {
  constructor (private readonly access: PgAccess) {}

  async add (message: Omit<OutboxMessage, 'id' | 'createdAt'>, at: Date): Promise<void> {
    await this.access.current.insert(outbox).values({ ...message, createdAt: at.getTime() })
  }

  async latest (limit = 100): Promise<OutboxMessage[]> {
    const rows = await this.access.current.select().from(outbox).orderBy(desc(outbox.id)).limit(limit)
    return rows.map((row) => ({ ...row, createdAt: new Date(row.createdAt) }))
  }
}
