import { randomUUID } from 'node:crypto'
import { and, count, eq, gte, isNotNull, lte, sql } from 'drizzle-orm'
import type { Clock } from '../domain/clock.ts'
import type { PendingEnrollment, PendingStore } from '../domain/pending.ts'
import type { SqliteAccess } from './sqlite-access.ts'
import { providerSeedBinding } from './provider-enrollments.ts'
import { pendingEnrollments, providerEnrollments, smsSends } from './schema.ts'
import type { Sealer } from './sealing.ts'

type Row = typeof pendingEnrollments.$inferSelect

export class SqlitePendingStore implements PendingStore {
  constructor (private readonly access: SqliteAccess, private readonly sealer: Sealer, private readonly clock: Clock) {}

  async startTotp (userId: string, secretBase32: string, expiresAt: Date): Promise<PendingEnrollment> {
    return await this.access.run(() => {
      const id = randomUUID()
      const row = this.access.db.transaction((tx) => {
        tx.delete(pendingEnrollments).where(and(eq(pendingEnrollments.userId, userId), eq(pendingEnrollments.kind, 'totp'))).run()
        return tx.insert(pendingEnrollments).values({
          id, userId, kind: 'totp', secretSealed: this.sealer.seal(secretBase32, `pending-totp:${id}`),
          expiresAt: expiresAt.getTime(), createdAt: this.clock.now().getTime()
        }).returning().get()
      })
      return toPending(row)
    })
  }

  async findTotp (userId: string): Promise<(PendingEnrollment & { secret: string }) | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(pendingEnrollments)
        .where(and(eq(pendingEnrollments.userId, userId), eq(pendingEnrollments.kind, 'totp'), isNotNull(pendingEnrollments.secretSealed))).get()
      return row === undefined ? undefined : { ...toPending(row), secret: this.sealer.open(row.secretSealed!, `pending-totp:${row.id}`) }
    })
  }

  async startPhone (userId: string, kind: 'phone' | 'step_up_phone', phone: string, hashFor: (id: string) => string, sentAt: Date, expiresAt: Date): Promise<PendingEnrollment> {
    return await this.access.run(() => {
      const id = randomUUID()
      const row = this.access.db.transaction((tx) => {
        tx.delete(pendingEnrollments).where(and(eq(pendingEnrollments.userId, userId), eq(pendingEnrollments.kind, kind))).run()
        return tx.insert(pendingEnrollments).values({
          id, userId, kind, phone, codeHash: hashFor(id), sentAt: sentAt.getTime(), expiresAt: expiresAt.getTime(), createdAt: this.clock.now().getTime()
        }).returning().get()
      })
      return toPending(row)
    })
  }

  async findPhone (userId: string, kind: 'phone' | 'step_up_phone'): Promise<PendingEnrollment | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(pendingEnrollments).where(and(eq(pendingEnrollments.userId, userId), eq(pendingEnrollments.kind, kind))).get()
      return row === undefined ? undefined : toPending(row)
    })
  }

  async resendCode (id: string, codeHash: string, sentAt: Date, expiresAt: Date): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(pendingEnrollments).set({ codeHash, sentAt: sentAt.getTime(), expiresAt: expiresAt.getTime(), attempts: 0 }).where(eq(pendingEnrollments.id, id)).run()
    })
  }

  async addAttempt (id: string): Promise<number> {
    return await this.access.run(() => {
      const row = this.access.db.update(pendingEnrollments).set({ attempts: sqlIncrement() }).where(eq(pendingEnrollments.id, id)).returning({ attempts: pendingEnrollments.attempts }).get()
      return row?.attempts ?? Number.MAX_SAFE_INTEGER
    })
  }

  async claim (id: string): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.delete(pendingEnrollments).where(eq(pendingEnrollments.id, id)).run().changes === 1
    })
  }

  /** Re-seals the secrets of setups in progress not under the current key (key rotation); returns how many. */
  async resealAll (): Promise<number> {
    return await this.access.run(() => {
      return this.access.db.transaction((tx) => {
        const portal = this.sealer.resealRows(
          tx.select({ id: pendingEnrollments.id, sealed: pendingEnrollments.secretSealed }).from(pendingEnrollments)
            .where(and(eq(pendingEnrollments.kind, 'totp'), isNotNull(pendingEnrollments.secretSealed))).all(),
          (id) => `pending-totp:${id}`,
          (id, sealed) => { tx.update(pendingEnrollments).set({ secretSealed: sealed }).where(eq(pendingEnrollments.id, id)).run() }
        )
        // Seeds of setups at a directory (AWS virtual MFA, Entra hardware OATH) until the device is confirmed.
        const provider = this.sealer.resealRows(
          tx.select({ id: providerEnrollments.id, sealed: providerEnrollments.secretSealed }).from(providerEnrollments)
            .where(isNotNull(providerEnrollments.secretSealed)).all(),
          providerSeedBinding,
          (id, sealed) => { tx.update(providerEnrollments).set({ secretSealed: sealed }).where(eq(providerEnrollments.id, id)).run() }
        )
        return portal + provider
      })
    })
  }

  /** Forgets setups and codes that expired, and send records older than a day (housekeeping). */
  async purgeExpired (now: Date): Promise<number> {
    return await this.access.run(() => {
      const pending = this.access.db.delete(pendingEnrollments).where(lte(pendingEnrollments.expiresAt, now.getTime())).run().changes
      const sends = this.access.db.delete(smsSends).where(lte(smsSends.sentAt, now.getTime() - 24 * 3_600_000)).run().changes
      return pending + sends
    })
  }

  async recordSms (userId: string, phone: string, at: Date): Promise<void> {
    return await this.access.run(() => {
      this.access.db.insert(smsSends).values({ userId, phone, sentAt: at.getTime() }).run()
    })
  }

  async smsCountSince (userId: string, since: Date): Promise<number> {
    return await this.access.run(() => {
      return this.access.db.select({ n: count() }).from(smsSends).where(and(eq(smsSends.userId, userId), gte(smsSends.sentAt, since.getTime()))).get()?.n ?? 0
    })
  }
}

function sqlIncrement () {
  return sql`${pendingEnrollments.attempts} + 1`
}

function toPending (row: Row): PendingEnrollment {
  return {
    id: row.id,
    userId: row.userId,
    kind: row.kind,
    phone: row.phone,
    codeHash: row.codeHash,
    attempts: row.attempts,
    sentAt: row.sentAt === null ? null : new Date(row.sentAt),
    expiresAt: new Date(row.expiresAt)
  }
}

